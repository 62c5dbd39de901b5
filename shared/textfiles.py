"""Reading a text file a user named (a password file, a key file, a node config) with
errors from the one tree: a missing file, a directory, an unreadable file and bytes that
are not UTF-8 each become the caller's error class naming the file and what to do."""

from __future__ import annotations

from pathlib import Path

from framecast.shared.errors import FramecastError


def read_user_text(path: Path, *, what: str, error: type[FramecastError], fix: str) -> str:
    """The UTF-8 text of ``path``; ``what`` names the file in the message ("password file")."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist", fix=fix) from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file", fix=fix) from None
    except PermissionError:
        raise error(
            f"{what} {path} is not readable by this user (permission denied)", fix=fix
        ) from None
    except OSError as exc:
        raise error(
            f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}", fix=fix
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{what} {path} is not UTF-8 text (byte {data[exc.start]:#04x} at line {line}, "
            f"column {column})",
            fix=fix,
        ) from None
