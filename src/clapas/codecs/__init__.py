"""Vendor JavaScript codecs: the device makers' own payload decoders, run sandboxed and fast.

- `engine`: one codec in a QuickJS runtime with time, memory and stack limits (TTS / ChirpStack v4
  `decodeUplink`, `normalizeUplink`, `encodeDownlink`/`decodeDownlink`, legacy `Decoder` and `Decode`);
- `repository`: codecs from a TTS device-repository folder, a `.js` file or a ChirpStack profile export;
- `library`: the process's compiled codecs, by reference;
- `check`, `compare`, `runner`, `cli`: `clapas codecs test PATH` runs every published example as The Things
  Stack's device-repository check does (fresh sandbox, goja's export, exact comparison), with figures per class.

The pipeline uses them through `clapas.decoders.javascript`.
"""
