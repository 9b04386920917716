"""The process's codecs: where references point, and each codec compiled once for every device that uses it.

A reference is what a device's `codec` tag, its profile's `codec` setting or a `decoder = "codec:<ref>"` names:
a path to a `.js`, a codec `.yaml` or a ChirpStack profile `.json` (absolute, or relative to the repository
folder), or `maker/codec-id` in the repository (`vendor/<maker>/<codec-id>.yaml`, `-codec` optional). Devices of
a ChirpStack profile found in the `chirpstack_profiles` folder get that profile's codec with no setting at all.

It is process-wide on purpose: a codec compiled for one pipeline serves every pipeline and replay of the process,
and the limits are the city's, not a pipeline's.
"""

from __future__ import annotations

import threading
from pathlib import Path

from clapas.codecs.engine import CodecLoadError, JsCodec, Limits
from clapas.codecs.repository import chirpstack_profiles, is_codec_yaml, load_spec, read_yaml

CODEC_PREFIX = "codec:"


class CodecLibrary:
    def __init__(self, repository: str = "", profiles_folder: str = "", limits: Limits | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(repository, profiles_folder, limits)

    def configure(self, repository: str = "", profiles_folder: str = "", limits: Limits | None = None) -> None:
        with self._lock:
            self.repository = Path(repository) if repository else None
            self.profiles_folder = Path(profiles_folder) if profiles_folder else None
            self.limits = limits or Limits()
            self._codecs: dict[str, JsCodec | CodecLoadError] = {}
            self._profiles: dict[str, Path] | None = None

    def resolve(self, ref: str) -> Path:
        """The file a reference names; CodecLoadError saying where it looked when there is none."""
        ref = ref.removeprefix(CODEC_PREFIX).strip()
        tried: list[Path] = []
        p = Path(ref)
        candidates = [p] if p.is_absolute() else []
        if self.repository is not None and not p.is_absolute():
            for base in (self.repository, self.repository / "vendor"):
                candidates.append(base / ref)
                if not p.suffix:
                    candidates += [base / f"{ref}-codec.yaml", base / f"{ref}.yaml", base / f"{ref}.js"]
        if not p.is_absolute():
            candidates.append(p)
        for c in candidates:
            tried.append(c)
            if c.is_file():
                return _device_codec(c) or c.resolve()
        where = ", ".join(str(t) for t in tried[:4])
        raise CodecLoadError(f"not found (looked at {where}"
                             f"{'' if self.repository else '; no [codecs] repository set'})")

    def codec(self, ref: str) -> JsCodec:
        """The compiled codec a reference names; a codec that failed to load keeps failing with the same reason
        (it is not read again for every uplink)."""
        with self._lock:
            found = self._codecs.get(ref)
            if found is None:
                try:
                    path = self.resolve(ref)
                    spec = load_spec(path, ref.removeprefix(CODEC_PREFIX))
                    found = JsCodec(spec.source, spec.name, self.limits)
                except CodecLoadError as e:
                    found = e
                except OSError as e:
                    found = CodecLoadError(str(e))
                self._codecs[ref] = found
        if isinstance(found, CodecLoadError):
            raise found
        return found

    def profile_codec(self, profile: str) -> str | None:
        """The reference of a ChirpStack device-profile export named `profile`, if the folder has one."""
        if self.profiles_folder is None or not profile:
            return None
        with self._lock:
            if self._profiles is None:
                self._profiles = chirpstack_profiles(self.profiles_folder) if self.profiles_folder.is_dir() else {}
            path = self._profiles.get(profile)
        return str(path) if path else None


def _device_codec(path: Path) -> Path | None:
    """A device definition (`vendor/<maker>/<device>.yaml`) names its codec in its profiles: follow it."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return None
    try:
        doc = read_yaml(path)
    except CodecLoadError:
        return None
    if is_codec_yaml(doc) or not isinstance(doc, dict):
        return None
    for fw in doc.get("firmwareVersions") or []:
        for prof in ((fw or {}).get("profiles") or {}).values() if isinstance(fw, dict) else ():
            codec = isinstance(prof, dict) and prof.get("codec")
            if codec and (path.parent / f"{codec}.yaml").is_file():
                return (path.parent / f"{codec}.yaml").resolve()
    return None


LIBRARY = CodecLibrary()
