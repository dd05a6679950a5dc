"""The data a run trains on: the --data folder, the cached triangles (generated once, and again
when damaged), or, for a user's model (--model), its own data."""

from __future__ import annotations

import shutil
from pathlib import Path

from segbench.benchmark import triangles
from segbench.benchmark.config import RunConfig
from segbench.errors import BadInput, Unavailable
from segbench.measure.run.display import Display
from segbench.results.result import OwnModelInfo

# A user's model (--model) trains on synthetic samples: an epoch is this many batches.
OWN_STEPS_PER_EPOCH = 8


def load_data(
    data_dir: Path | None, size: int, display: Display, train_images: int | None = None
) -> tuple[Path, triangles.Split, triangles.Split]:
    """The data folder and its splits: `--data` as given, or the cached triangles, generated
    once and regenerated when they no longer match the recipe's digest. `train_images`: the
    training images a run of steps reads (only those decoded; triangles.load_dataset)."""
    if data_dir is not None:
        try:
            with display.status(f"loading {data_dir} into memory"):
                return Path(data_dir), *triangles.load_dataset(data_dir, size, train_images)
        except triangles.DataError as e:
            raise BadInput(f"--data: {e}") from None
        except OSError as e:
            raise BadInput(f"--data {data_dir}: cannot read ({e.strerror or e})") from None
    folder = triangles.default_data_dir()
    try:
        for _ in range(2):
            if not (folder / triangles.TRAIN_CSV).is_file():
                display.note(f"generating the triangles data set into {folder} (once)")
                shutil.rmtree(folder, ignore_errors=True)
                try:
                    triangles.generate(folder)
                except OSError:
                    # Another process (a worker beside this one) put its copy there first.
                    if not (folder / triangles.TRAIN_CSV).is_file():
                        raise
            try:
                with display.status(f"loading {folder} into memory"):
                    train, validation = triangles.load_dataset(folder, size, train_images)
                if triangles.dataset_sha256(train, validation) == triangles.TRIANGLES_SHA256:
                    return folder, train, validation
                problem = "its files differ from the recipe's"
            except triangles.DataError as e:
                problem = str(e)
            display.note(f"the cached data set in {folder} is damaged ({problem}): regenerating it")
            shutil.rmtree(folder)
    except OSError as e:
        raise Unavailable(
            f"data cache {folder}: cannot write ({_why(folder, e)}); "
            "set SEGBENCH_CACHE to a writable folder"
        ) from None
    raise Unavailable(f"{folder}: the regenerated triangles differ from the recipe; please report")


def images_read(config: RunConfig) -> int | None:
    """The training images a run reads: the first (1 + warm-up + steps) batches' worth for a
    run of steps (each repeat starts again from the first); None (all) for epochs."""
    if config.epochs > 0:
        return None
    return (1 + config.warmup + config.steps) * config.batch_size


def own_model_data(
    config: RunConfig, data_dir: Path | None, display: Display
) -> tuple[OwnModelInfo, Path, triangles.Split, triangles.Split]:
    """A user's model (--model): built once to learn its shapes (ModelError, exit 2, for one
    that cannot be benchmarked), and its data: the --data folder's grayscale images and masks
    when the model takes and makes S×S×1 tensors, else fixed-seed synthetic samples of its
    shapes (a training split of OWN_STEPS_PER_EPOCH batches, a validation split of one)."""
    from segbench.benchmark import own_model
    from segbench.measure.flops import count_flops

    with display.status(f"building --model {config.model}"):
        own = own_model.own_model_of(config)
        counted = count_flops(own.model)
    if counted.forward_per_sample <= 0:
        raise BadInput(
            f"--model {config.model}: no layer whose FLOPs segbench counts (convolutions, "
            f"Dense, attention); not counted: {', '.join(counted.unknown) or 'none'}"
        )
    if data_dir is not None:
        size = own.input_shape[0]
        if not (own.input_shape == own.output_shape == (size, size, 1)):
            raise BadInput(
                f"--data with --model {config.model}: a data folder holds grayscale square "
                f"images with masks of the same size; the model takes {own.input_shape} and "
                f"makes {own.output_shape}: drop --data (synthetic samples of its shapes)"
            )
        folder, train, validation = load_data(data_dir, size, display, images_read(config))
    else:
        folder = Path("synthetic")
        count = OWN_STEPS_PER_EPOCH * config.batch_size
        train = own_model.synthetic_split(own, count, config.seed)
        validation = own_model.synthetic_split(own, config.batch_size, config.seed + 1)
    info = OwnModelInfo(
        spec=config.model,
        function=own.function,
        source_sha256=own.source_sha256,
        args=list(config.model_args or []),
        digest=own.digest,
        input_shape=list(own.input_shape),
        output_shape=list(own.output_shape),
        activation=own.activation,
        loss=own.loss_name,
        loss_origin=own.loss_origin,
        optimizer=None if own.optimizer is None else type(own.optimizer).__name__,
        flops_not_counted=list(counted.unknown),
    )
    return info, folder, train, validation


def _why(folder: Path, error: OSError) -> str:
    """Why `folder` cannot be written: a file where a folder should be, or the OS's reason."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            return (
                error.strerror or str(error)
                if parent.is_dir()
                else f"{parent} is a file, not a folder"
            )
    return error.strerror or str(error)
