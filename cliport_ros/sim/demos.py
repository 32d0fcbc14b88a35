"""Oracle demonstrations: run the scripted expert per seed, keep full-score episodes, write them to disk.

Seeds are taken in order from ``seed_start`` (step 2, as the paper's splits); the stored set is the first
``n`` successful seeds whatever the number of workers (results are consumed in seed order). Seeds already
on disk are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cliport_ros.data.episodes import (
    FORMAT_MARKER,
    Episode,
    EpisodeFormatError,
    Step,
    episode_filename,
    episode_seed,
    list_episodes,
)
from cliport_ros.sim.seeds import seed_for, seed_matches_split
from cliport_ros.types import PickPlace, Pose


@dataclass(frozen=True)
class PlaceNoise:
    """Noise on the oracle's executed places; the recorded label stays the oracle's own place (as DART does).

    A policy sets blocks down a few millimetres and degrees off; demos whose earlier places are exact never
    show the states that follow. Each executed place is shifted by x-y offsets ~ N(0, ``xy_std_mm``) per axis
    and turned by ~ N(0, ``yaw_std_deg``), each cut at two standard deviations.
    """

    xy_std_mm: float
    yaw_std_deg: float

    def __post_init__(self) -> None:
        for name in ("xy_std_mm", "yaw_std_deg"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"PlaceNoise.{name} must be a finite number >= 0, got {value!r}")

    @property
    def spec(self) -> list[float]:
        """``[MM, DEG]``, as an episode's info and a run's summary record it."""
        return [self.xy_std_mm, self.yaw_std_deg]

    @classmethod
    def parse(cls, text: str) -> PlaceNoise:
        """``"MM,DEG"``, e.g. ``"3,5"``."""
        parts = text.split(",")
        try:
            mm, deg = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"place noise is MM,DEG (e.g. 3,5), got {text!r}") from None
        return cls(mm, deg)

    @staticmethod
    def generator(seed: int) -> np.random.Generator:
        """The random generator the demo of episode ``seed`` draws its place noise from."""
        return np.random.default_rng([seed, _NOISE_STREAM])

    def apply(self, action: PickPlace, rng: np.random.Generator) -> PickPlace:
        """The action with its place shifted and turned by one draw."""
        dx, dy = np.clip(rng.normal(0.0, 1.0, 2), -2.0, 2.0) * self.xy_std_mm / 1000.0
        dyaw = float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0)) * np.radians(self.yaw_std_deg)
        x, y, z = action.place.position
        place = Pose.from_xyz_yaw((x + dx, y + dy, z), action.place.yaw + dyaw)
        return replace(action, place=place)


@dataclass(frozen=True)
class EpisodeOutcome:
    seed: int
    score: float
    episode: Episode | None  # kept only when the oracle reached the full score
    renderer: str = ""


def run_oracle_episode(
    env,
    seed: int,
    split: str,
    mistake: bool = False,
    mistake_step: int | None = None,
    place_noise: PlaceNoise | None = None,
) -> EpisodeOutcome:
    """Roll out the oracle for one seed; the episode's steps hold the observation *before* each action.

    With ``mistake``, one step drawn from the seed executes ``env.mistake()`` instead and is not recorded: the
    demo shows the oracle recovering from a wrong place, a state that plain demos never show. The step is one
    of those the oracle would make (``Task.places_left`` after the reset), and one of the first
    ``max_steps - 1``, so that a step is left to put it right. ``mistake_step`` fixes that step instead (for
    demos of the step where a policy goes wrong); ValueError if the episode has no such step.
    ``place_noise``: every oracle place is executed with this noise (see :class:`PlaceNoise`), drawn from the
    seed; the step records the oracle's place as its label.
    """
    obs = env.reset(seed, split)
    ws = env.workspace
    mistake_at = -1
    if mistake:
        if env.max_steps < 2:
            raise ValueError(f"{env.task_key}: one step per episode leaves no step to recover from a mistake")
        # not beyond the oracle's last step: an episode that ends first would show no mistake at all
        places = max(1, min(env.max_steps - 1, env.task.places_left(env.scene)))
        if mistake_step is None:
            mistake_at = int(np.random.default_rng([seed, _MISTAKE_STREAM]).integers(places))
        elif 0 <= mistake_step < places:
            mistake_at = mistake_step
        else:
            raise ValueError(
                f"{env.task_key}: the mistake's step must be one of the oracle's first {places} (0..{places - 1}), "
                f"got {mistake_step}"
            )
    steps: list[Step] = []
    info: dict[str, object] = {}
    noise_rng = PlaceNoise.generator(seed)
    if place_noise is not None:
        info["place_noise"] = place_noise.spec
    while not env.done:
        if env.step_count == mistake_at:
            obs = env.step(env.mistake()).observation
            # the recorded step that starts putting the mistake right (a training run may weigh it up)
            info["recovery_step"] = len(steps)
            continue
        action = env.oracle()
        result = env.step(action if place_noise is None else place_noise.apply(action, noise_rng))
        steps.append(
            Step(
                obs.view.color,
                obs.view.height,
                obs.instruction,
                action.pick,
                action.place,
                ws.xyz_to_pixel(action.pick.position),
                ws.xyz_to_pixel(action.place.position),
                result.reward,
            )
        )
        obs = result.observation
    full = env.score >= 100.0 - 1e-6 and bool(steps)  # a mistake that happened to finish the task shows nothing
    episode = Episode(env.task_key, split, seed, env.score, tuple(steps), ws, info) if full else None
    return EpisodeOutcome(seed, env.score, episode, env.renderer)


_WORKER_ENV = None
_MISTAKE_STREAM = 3  # a random stream of its own, so plain demos of a seed are unchanged
_NOISE_STREAM = 4  # likewise for the place noise


def _worker_init(task: str, robot: str, renderer: str) -> None:
    global _WORKER_ENV
    from cliport_ros.sim.environment import SimEnvironment

    _WORKER_ENV = SimEnvironment(task, robot=robot, renderer=renderer)


def _worker_run(
    seed: int, split: str, mistake: bool, mistake_step: int | None, place_noise: PlaceNoise | None
) -> EpisodeOutcome:
    return run_oracle_episode(_WORKER_ENV, seed, split, mistake, mistake_step, place_noise)


def _check_existing(path: Path, task: str, split: str) -> None:
    """Cheap check of a file we are about to skip: right format and the task/split its name says."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or str(data["format"]) != FORMAT_MARKER:
                raise EpisodeFormatError(f"{path}: not a cliport_ros episode; move it out of the output folder")
            meta = json.loads(str(data["meta"]))
    except EpisodeFormatError:
        raise
    except Exception as exc:
        raise EpisodeFormatError(f"{path}: unreadable episode ({exc}); delete it to regenerate that seed") from exc
    if meta.get("task") != task or meta.get("split") != split:
        raise EpisodeFormatError(f"{path}: holds {meta.get('task')}/{meta.get('split')}, expected {task}/{split}")


def _remove_stale_temporaries(out: Path) -> None:
    """Delete ``.<name>.<pid>.tmp`` files whose writer is gone (a killed run)."""
    for entry in out.glob(".*.tmp"):
        try:
            pid = int(entry.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            entry.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def generate_demos(
    task: str,
    split: str,
    n: int,
    out: str | Path,
    seed_start: int | None = None,
    workers: int = 1,
    robot: str = "ur5",
    renderer: str = "auto",
    max_tries: int | None = None,
    progress: bool = True,
    mistakes: bool = False,
    shard: tuple[int, int] = (0, 1),
    mistake_step: int | None = None,
    place_noise: PlaceNoise | None = None,
) -> dict:
    """Write ``n`` full-score oracle episodes of ``task``/``split`` into ``out``; returns the summary.

    ``mistakes``: recovery demos, one wrong place per episode (see :func:`run_oracle_episode`), at the step
    ``mistake_step`` of each if given, else at one drawn from the seed.
    ``shard``: ``(i, count)`` makes this run one of ``count`` that share the run's seeds without overlap: it
    takes the seeds at positions i, i + count, i + 2 count, ... of the run's sequence (start, start + 2, ...)
    and writes its part of ``n`` (``n // count``, one more for the first ``n % count`` shards), so ``count``
    jobs on as many machines fill one folder with ``n`` episodes.
    ``place_noise``: the oracle's places executed with noise (see :class:`PlaceNoise`), labels kept exact.
    """
    from cliport_ros.data.episodes import write_episode
    from cliport_ros.sim.tasks import SPLITS, make_task

    made = make_task(task)
    key = made.key
    if mistakes and not made.supports_mistakes:
        raise ValueError(f"{key} has an oracle of its own, so no recovery demos (--mistakes); drop the flag")
    if mistake_step is not None and (not mistakes or mistake_step < 0):
        raise ValueError(f"a mistake's step goes with --mistakes and is >= 0, got {mistake_step}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    if n < 0:
        raise ValueError(f"--n must be >= 0, got {n}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    index, count = shard
    if not (isinstance(count, int) and isinstance(index, int) and count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be I/N with 0 <= I < N, got {index}/{count}")
    total = n
    n = n // count + (1 if index < n % count else 0)
    start = seed_for(split, 0) if seed_start is None else int(seed_start)
    if not seed_matches_split(start, split):
        raise ValueError(
            f"seed {start} is not a {split} seed (train: even from 0, val: odd from 1, test: odd from 10001)"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    on_disk = {}
    for path in list_episodes(out, key, split):
        seed = episode_seed(path)
        if seed >= start and (seed - start) % 2 == 0 and ((seed - start) // 2) % count == index:
            _check_existing(path, key, split)
            on_disk[seed] = path
    max_tries = max_tries if max_tries is not None else 3 * n + 20
    t0 = time.perf_counter()
    stored = 0
    tried = successes = 0
    written: list[int] = []
    failures: list[tuple[int, float]] = []
    used_renderers: set[str] = set()

    def seeds():
        s = start + 2 * index
        while True:
            yield s
            s += 2 * count

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=key, unit="ep", file=sys.stderr, dynamic_ncols=True)

    def consume(outcome: EpisodeOutcome) -> None:
        nonlocal stored, tried, successes
        tried += 1
        used_renderers.add(outcome.renderer)
        if outcome.episode is None:
            failures.append((outcome.seed, round(outcome.score, 2)))
        if outcome.episode is not None:
            successes += 1
            write_episode(outcome.episode, out)
            written.append(outcome.seed)
            stored += 1
            if bar is not None:
                bar.update(1)

    seed_iter = seeds()
    if workers == 1:
        env = None
        try:
            for seed in seed_iter:
                if stored >= n or tried >= max_tries:
                    break
                if seed in on_disk:
                    stored += 1
                    if bar is not None:
                        bar.update(1)
                    continue
                if env is None:
                    from cliport_ros.sim.environment import SimEnvironment

                    env = SimEnvironment(key, robot=robot, renderer=renderer)
                consume(run_oracle_episode(env, seed, split, mistakes, mistake_step, place_noise))
        finally:
            if env is not None:
                env.close()
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init, initargs=(key, robot, renderer)
        ) as pool:
            pending: list[tuple[int, object]] = []  # in seed order
            while True:
                # Keep 2 jobs per worker in flight, never more than could still be needed.
                while len(pending) < 2 * workers and stored + len(pending) < n and tried + len(pending) < max_tries:
                    seed = next(seed_iter)
                    if seed in on_disk:
                        stored += 1
                        if bar is not None:
                            bar.update(1)
                        continue
                    pending.append((seed, pool.submit(_worker_run, seed, split, mistakes, mistake_step, place_noise)))
                if not pending:
                    break
                _, future = pending.pop(0)
                consume(future.result())
                if stored >= n:
                    for _, f in pending:
                        f.cancel()
                    break
    if bar is not None:
        bar.close()
    return {
        "task": key,
        "split": split,
        "episodes": stored,
        "written": len(written),
        "skipped_on_disk": len(on_disk),
        "tried": tried,
        "oracle_success_rate": (successes / tried) if tried else None,
        "seconds": round(time.perf_counter() - t0, 3),
        "out": str(out),
        "robot": robot,
        "mistakes": mistakes,
        "mistake_step": mistake_step,
        "place_noise": None if place_noise is None else place_noise.spec,
        "renderer": ",".join(sorted(used_renderers)) or renderer,
        "failed_seeds": failures,
        "shard": f"{index}/{count}",
        "target": n,  # this shard's part of the run's episodes
        "run_episodes": total,
    }


__all__ = ["EpisodeOutcome", "PlaceNoise", "episode_filename", "generate_demos", "run_oracle_episode"]
