"""``semprobe info``: describe a checkpoint."""

from __future__ import annotations

import json
import textwrap

import click

from semprobe.cli.common import ZOO_DATASETS, checkpoint_options, command, load_one_checkpoint


def _format_mapping(mapping: dict) -> str:
    if not mapping:
        return "-"
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in mapping.items())


@command()
@checkpoint_options()
@click.option("--dataset", type=click.Choice(ZOO_DATASETS), default=None,
              help="Dataset of a --ckpt robustbench:NAME zoo entry.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(ckpt, arch, num_classes, in_channels, normalization, dataset, as_json) -> None:
    """Describe a checkpoint: arch, classes, dataset, normalization, heads, config, metrics,
    and the tap names `--layer` accepts (penultimate, logits and every module name).

    \b
    Examples:
      semprobe info --ckpt runs/scarl/best.pt
      semprobe info --ckpt trades_wrn.pt --arch wrn_34_10 --normalization none --json
      semprobe info --ckpt tv_resnet18.pt --arch torchvision:resnet18 --num-classes 10 --normalization cifar10
      semprobe info --ckpt robustbench:Standard --dataset cifar10 --threat-model Linf
    """
    loaded = load_one_checkpoint(
        ckpt, arch=arch, num_classes=num_classes, in_channels=in_channels, normalization=normalization
    )
    summary = loaded.summary()
    summary["sha256"] = loaded.sha256
    summary["taps"] = loaded.model.tap_names()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    norm = summary["normalization"]
    heads = summary["heads"]
    words = summary["word_embedding"]
    rows = [
        ("checkpoint", summary["path"]),
        ("sha256", summary["sha256"]),
        ("format", summary["format"]),
        ("arch", f"{summary['arch']} {_format_mapping(summary['arch_kwargs']) if summary['arch_kwargs'] else ''}".strip()),
        ("parameters", f"{summary['parameters']:,}"),
        ("input", f"{summary['in_channels']} channels, pixels in [0,1]"),
        ("normalization", f"mean {norm['mean']} std {norm['std']}" if norm
         else "inside the model (RobustBench)" if summary["source"] else "none"),
        ("classes", f"{summary['num_classes']}: " + ", ".join(summary["classes"]) if summary["classes"]
         else str(summary["num_classes"])),
        ("dataset", summary["dataset"] or "-"),
        *([("source", f"{summary['source']} (threat model {summary['threat_model']})")] if summary["source"] else []),
        ("heads", f"image {heads['image_dim']} -> {heads['out_dim']}, word {heads['word_dim']} -> {heads['out_dim']}"
         if heads else "none"),
        ("word vectors", f"{words['name']} ({words['dim']}-d)" if words else "none"),
        ("epoch", "-" if summary["epoch"] is None else str(summary["epoch"])),
        ("config", _format_mapping(summary["config"])),
        ("metrics", _format_mapping(summary["metrics"])),
    ]
    rows.append((f"taps ({len(summary['taps'])})", ", ".join(summary["taps"])))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(_wrapped_row(key, value, width))


def _wrapped_row(key: str, value: str, width: int, columns: int = 100) -> str:
    """``key  value`` with a value longer than a line wrapped under itself (taps are long)."""
    indent = " " * (width + 2)
    if len(indent) + len(value) <= columns or not key.startswith("taps"):
        return f"{key.ljust(width)}  {value}"
    lines = textwrap.wrap(value, columns - len(indent), break_on_hyphens=False)
    return f"{key.ljust(width)}  " + f"\n{indent}".join(lines)


