"""Commands that show what there is before a sweep: the architectures, the datasets, the Slurm site."""
import argparse
from typing import Any

from harness.cli.options import Parser, add_force, add_format, non_negative_int, positive_int, user_path, whole_number_within
from harness.data import DEMO, DEMO_LIMITS, NEAR_DUPLICATE_BITS
from harness.errors import UserError


def cmd_models(args: argparse.Namespace) -> int:
    from harness.cli.render import out, print_rows
    from harness.zoo.models import describe_models

    if args.all is not None:
        return cmd_models_all(args)
    rows = describe_models()
    print_rows(args.format, rows, ["model", "timm_weights", "params", "paper_params", "delta", "input_size", "interpolation", "keras_mode"],
               title="The paper's eight architectures (parameters counted as Keras counts them)", wide=args.wide,
               optional=("delta", "interpolation", "input_size", "keras_mode", "timm_weights"))
    if args.format != "table":
        return 0
    for row in rows:
        if row["note"]:
            out.print(f"[bold]{row['model']}[/bold] {row['delta']:+,}: {row['note']}")
    return 0


def cmd_models_all(args: argparse.Namespace) -> int:
    from harness.cli.render import print_rows
    from harness.zoo.lookup import list_timm_models

    rows = list_timm_models(args.all)
    if not rows:
        raise UserError(f"timm has no model matching {args.all!r} (a pattern such as 'convnext*' or '*vit_small*')")
    print_rows(args.format, rows, ["model", "pretrained", "default_tag", "tags", "input_size", "fixed_input_size", "paper"],
               title=f"timm models matching {args.all!r}: any of them goes to sweep --models", wide=args.wide,
               optional=("fixed_input_size", "input_size", "default_tag"))
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from harness.cli.render import err, say, table
    from harness.data.prepare import prepare_dataset

    report = prepare_dataset(args.real, args.fake, args.out, args.per_class, args.seed, args.reencode, args.force,
                             args.groups, args.group_pattern, args.near_duplicates)
    share = {"label": "fake share", **{split: f"{value:.1%}" for split, value in report.fake_share.items()}}
    err.print(table([*({"label": label, **counts} for label, counts in report.counts.items()), share],
                    ["label", "train", "val", "test"], title=f"{report.manifest}"))
    if report.skipped:
        say(f"skipped {len(report.skipped)} files that do not decode:")
        for path, reason in report.skipped:
            say(f"  {path}: {reason}")
    if report.duplicates_dropped:
        say(f"dropped {report.duplicates_dropped} duplicates: {report.duplicates_bytes} byte-identical, "
            f"{report.duplicates_pixels} pixel-identical (the same decoded image in other bytes)")
    for digest in report.in_both_classes:
        say(f"an image (sha256 {digest[:16]}...) is both real and fake; dropped from both", warning=True)
    for warning in report.warnings:  # codec, size and class balance
        say(warning, warning=True)
    for note in report.notes:
        say(note)
    say(report.groups)
    print(report.manifest)  # the file written, alone on stdout; what it holds is on stderr above
    return 0


def cmd_data_demo(args: argparse.Namespace) -> int:
    import csv
    from collections import Counter

    from harness.cli.render import err, table
    from harness.data.photographs import photograph_folders

    photograph_folders()  # a Python without the demo's photographs refused before torch is imported
    from harness.data.demo import make_demo

    generators = tuple(g.strip() for g in args.generators.split(",") if g.strip())
    path = make_demo(args.out, args.per_class, args.size, args.seed, generators)
    with open(path, newline="") as handle:
        counts = Counter((r["label"] if r["label"] == "real" else f"fake: {r['generator']}", r["split"]) for r in csv.DictReader(handle))
    kinds = sorted({kind for kind, _ in counts})
    err.print(table([{"kind": k, **{s: counts[(k, s)] for s in ("train", "val", "test")}} for k in kinds],
                    ["kind", "train", "val", "test"], title=str(path)))
    print(path)  # the file written, alone on stdout
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from harness.cli.render import print_rows, print_table, say
    from harness.cluster import site_backend

    site = site_backend().describe(args.partition, args.cpu_partition, args.profile)
    if args.format == "toml":
        print(site.profile_text, end="")
        return 0
    columns = list(site.partitions[0]) if site.partitions else []
    if args.format != "table":  # the partitions as rows; --meta: with the cluster and the settings a sweep would use
        print_rows(args.format, site.partitions, columns, meta=site.meta if args.meta else None)
        return 0
    print_table(site.partitions, columns, title=site.title, wide=args.wide,
                optional=("default", "state", "default_time_min", "nodes", "max_time_min", "gpu_types", "mem_mb_per_node"))
    for note in site.notes:
        say(note)
    print_table([{"setting": k, "value": v, "source": why} for k, v, why in site.settings],
                ["setting", "value", "source"], title="What a sweep would ask for (keep with --format toml > site.toml)", wide=args.wide)
    say("override any of them with sweep's options or a profile (--profile site.toml)")
    return 0


def add_commands(commands: Any) -> None:
    models = commands.add_parser("models", help="the paper's eight architectures, their parameter counts and preprocessing")
    add_format(models)
    models.add_argument("--all", nargs="?", const="*", metavar="PATTERN",
                        help="list timm's models matching PATTERN (e.g. 'convnext*'; default: all), any of which --models takes")
    models.set_defaults(func=cmd_models)

    data = commands.add_parser("data", help="datasets: prepare your own, or build the demo").add_subparsers(
        dest="data_command", required=True, parser_class=Parser)
    prepare = data.add_parser("prepare", help="check, deduplicate and split a real and a fake folder into manifest.csv")
    prepare.add_argument("--real", type=user_path, required=True, help="folder of real images (any depth)")
    prepare.add_argument("--fake", type=user_path, required=True, action="append",
                         help="folder of fake images (any depth); repeat it, one folder per generator")
    prepare.add_argument("--out", type=user_path, required=True, help="folder for manifest.csv (and re-encoded images)")
    prepare.add_argument("--per-class", type=positive_int, help="sample this many images per class (the paper: 5000)")
    prepare.add_argument("--seed", type=non_negative_int, default=0)
    prepare.add_argument("--reencode", metavar="png|jpeg:Q", help="pass both classes through the same codec")
    prepare.add_argument("--groups", type=user_path, metavar="FILE",
                         help="each image's group (a person): lines of 'image group', the image a file name or a path")
    prepare.add_argument("--group-pattern", metavar="REGEX",
                         help="the group from each image's path below its class folder: a regular expression with one "
                              "capture group (e.g. '^([^/]+)/'), or {parent}, the folder holding the image")
    prepare.add_argument("--near-duplicates", type=non_negative_int, nargs="?", const=NEAR_DUPLICATE_BITS, metavar="BITS",
                         help="group the images left without a group by a perceptual hash: those within BITS of its 64 "
                              f"bits (default {NEAR_DUPLICATE_BITS}) are copies of one photograph")
    add_force(prepare, "manifest.csv")
    prepare.set_defaults(func=cmd_data_prepare)
    demo = data.add_parser("demo", help="build the built-in demo dataset (no download)")
    demo.add_argument("--out", type=user_path, required=True)
    demo.add_argument("--per-class", type=whole_number_within(1, DEMO_LIMITS["per_class"]), default=DEMO["per_class"])
    demo.add_argument("--size", type=whole_number_within(1, DEMO_LIMITS["size"]), default=DEMO["size"], help="image side in pixels")
    demo.add_argument("--seed", type=whole_number_within(0, DEMO_LIMITS["seed"]), default=DEMO["seed"])
    demo.add_argument("--generators", default="upsampler",
                      help="kinds of fake, comma-separated: upsampler (GAN-style upsamplers), bilinear_conv, dcgan")
    demo.set_defaults(func=cmd_data_demo)

    cluster = commands.add_parser("cluster", help="what the cluster's scheduler offers, and the settings a sweep would use")
    cluster.add_argument("--partition", help="GPU partition (default: the only one with GPUs)")
    cluster.add_argument("--cpu-partition", help="CPU partition (default: the default partition, or the most CPU-only nodes)")
    cluster.add_argument("--profile", help="a sweep's profile (a packaged name or a .toml path): its partitions, the "
                         "python the jobs run (whose torch is checked against each partition's GPUs) and its gpu_capability")
    add_format(cluster, "toml", meta=True, more_help="toml: the settings a sweep would use, as a profile to edit and keep")
    cluster.set_defaults(func=cmd_cluster)
