"""Fine-tune datasets: a folder of clips and their captions, checked and packed into a
UnixFS directory in the client's store before anything is signed.

A dataset folder holds MP4 clips and either ``captions.jsonl`` (one ``{"file": NAME,
"caption": TEXT}`` per line) or one ``NAME.txt`` caption per ``NAME.mp4``. Every clip
must decode as MP4 with exactly the frame count and size the job trains at, and the
whole must fit the model's ``fine_tune`` bounds (clip count, bytes). The packed directory
is canonical — the clips plus one sorted ``captions.jsonl`` — so the same clips and
captions always give the same CID; it reaches providers by the same input path as an
init image (`client/inputs.py` upload, the node's acquire-before-claim).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.catalog import CatalogEntry, get_entry
from framecast.shared.errors import SpecError, VerificationFailed
from framecast.shared.ipfs.store import ContentStore
from framecast.shared.mp4 import read_video_info

CAPTIONS = "captions.jsonl"
CLIP_SUFFIX = ".mp4"


class PackedDataset(BaseModel):
    """`framecast dataset pack --json`."""

    model_config = ConfigDict(frozen=True)

    cid: str = Field(description="CID of the packed dataset directory (pass it as --dataset).")
    model: str
    clips: int
    bytes: int
    num_frames: int
    width: int
    height: int


def _refuse(message: str, fix: str) -> SpecError:
    return SpecError(message, field="dataset", fix=fix)


def read_captions(folder: Path, clips: list[str]) -> dict[str, str]:
    """Caption per clip name, from captions.jsonl or one NAME.txt per clip."""
    index = folder / CAPTIONS
    captions: dict[str, str] = {}
    if index.is_file():
        for number, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                name, caption = row["file"], row["caption"]
                if not isinstance(name, str) or not isinstance(caption, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise _refuse(
                    f'{index} line {number} is not {{"file": NAME, "caption": TEXT}}',
                    f"write one JSON object per line in {CAPTIONS}",
                ) from None
            if name in captions:
                raise _refuse(
                    f"{index} captions {name} twice (line {number})", "keep one caption per clip"
                )
            if name not in clips:
                raise _refuse(
                    f"{index} line {number} captions {name}, which is not a clip in {folder}",
                    f"add {name} or drop that line",
                )
            captions[name] = caption
    else:
        for name in clips:
            text = folder / (name.removesuffix(CLIP_SUFFIX) + ".txt")
            if text.is_file():
                captions[name] = text.read_text(encoding="utf-8").strip()
    for name in clips:
        if name not in captions:
            raise _refuse(
                f"clip {folder / name} has no caption",
                f"add a line for it to {CAPTIONS}, or write "
                f"{name.removesuffix(CLIP_SUFFIX)}.txt beside it",
            )
        if not captions[name].strip():
            raise _refuse(f"the caption of clip {folder / name} is empty", "describe the clip")
    return captions


def check_dataset(
    folder: Path, entry: CatalogEntry, *, num_frames: int, width: int, height: int
) -> tuple[list[str], dict[str, str], int]:
    """Clip names, captions and total bytes of a valid dataset; `SpecError` names the
    first file at fault and the fix."""
    bounds = entry.fine_tune
    if bounds is None:
        raise SpecError(
            f"model {entry.id} cannot be fine-tuned",
            field="model",
            fix="pick a model whose tasks list fine-tune (`framecast models`)",
        )
    if not folder.is_dir():
        raise _refuse(f"{folder} is not a folder", "pass the folder that holds the clips")
    names = sorted(p.name for p in folder.iterdir())
    clips = [n for n in names if n.endswith(CLIP_SUFFIX)]
    allowed = {CAPTIONS, *clips, *(c.removesuffix(CLIP_SUFFIX) + ".txt" for c in clips)}
    for name in names:
        if name not in allowed or not (folder / name).is_file():
            raise _refuse(
                f"{folder / name} is neither a clip (.mp4) nor a caption file",
                "move it out of the dataset folder",
            )
    if not clips:
        raise _refuse(f"{folder} holds no .mp4 clips", "add the training clips")
    if len(clips) > bounds.max_clips:
        raise _refuse(
            f"{folder} holds {len(clips)} clips; {entry.id} trains on at most {bounds.max_clips}",
            f"keep at most {bounds.max_clips} clips",
        )
    total = sum((folder / n).stat().st_size for n in names)
    if total > bounds.max_dataset_bytes:
        raise _refuse(
            f"{folder} is {total} bytes; {entry.id} takes datasets up to "
            f"{bounds.max_dataset_bytes} bytes",
            "use fewer or shorter clips",
        )
    for name in clips:
        try:
            info = read_video_info(folder / name)
        except VerificationFailed as exc:
            raise _refuse(
                f"clip {folder / name} is unreadable: {exc.message}",
                "re-encode it as H.264 MP4 (`ffmpeg -i IN -c:v libx264 OUT.mp4`)",
            ) from None
        if (info.num_frames, info.width, info.height) != (num_frames, width, height):
            raise _refuse(
                f"clip {folder / name} is {info.num_frames} frames of {info.width}x{info.height};"
                f" the job trains on {num_frames} frames of {width}x{height}",
                f"cut or scale it to {num_frames} frames of {width}x{height}, or pack with "
                "--frames/--width/--height matching the clips",
            )
    return clips, read_captions(folder, clips), total


def pack_dataset(
    store: ContentStore,
    folder: Path,
    *,
    model: str,
    num_frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> PackedDataset:
    """Check the dataset (sizes default to the model's), then add the canonical directory to
    ``store`` (pinned) and return its CID. A refused dataset writes nothing: the checks come
    first, and a local store makes its folders on its first write."""
    entry = get_entry(model)
    frames = num_frames or entry.defaults.num_frames
    w, h = width or entry.defaults.width, height or entry.defaults.height
    for field, bound, value in (
        ("frames", entry.frames, frames),
        ("width", entry.width, w),
        ("height", entry.height, h),
    ):
        if not bound.allows(value):
            raise SpecError(
                f"--{field} {value} is outside model {entry.id}'s {bound.describe()}",
                field=field,
                fix=f"pack for a {field} in {bound.describe()}",
            )
    clips, captions, total = check_dataset(folder, entry, num_frames=frames, width=w, height=h)
    with tempfile.TemporaryDirectory(prefix="framecast-dataset-") as tmp:
        staged = Path(tmp) / "dataset"
        staged.mkdir()
        for name in clips:
            shutil.copyfile(folder / name, staged / name)
        lines = [
            json.dumps({"caption": captions[n], "file": n}, sort_keys=True, ensure_ascii=False)
            for n in clips
        ]
        (staged / CAPTIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
        cid = store.add_path(staged)
    return PackedDataset(
        cid=str(cid),
        model=entry.id,
        clips=len(clips),
        bytes=total,
        num_frames=frames,
        width=w,
        height=h,
    )
