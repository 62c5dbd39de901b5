// framecast explorer: fetch a result from trustless gateways and verify it in the browser.
//
// The page names the result directory's CID (from the chain's JobDelivered/ResultRevealed)
// and the video's sha256 (same event). This script asks each gateway for a CAR
// (`/ipfs/{cid}?format=car`), checks every block against its CID with WebCrypto's SHA-256,
// walks the UnixFS directory from the chain's root CID (dag-pb links by name), rebuilds
// video.mp4 and poster.jpg from verified blocks only, and compares the video's sha256 with
// the chain's. Only bytes that passed are handed to <video>/<img> (as blob: URLs); a
// mismatch is shown as "not verified" and nothing is played. No eval, no innerHTML.
"use strict";

const FramecastVerify = (() => {
  const SHA2_256 = 0x12;
  const IDENTITY = 0x00;
  const DAG_PB = 0x70;
  const RAW = 0x55;

  class Bad extends Error {}

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const fromHex = (text) => {
    const clean = text.startsWith("0x") ? text.slice(2) : text;
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

  // Unsigned LEB128 varint at `pos`: [value, next position].
  function varint(bytes, pos) {
    let value = 0, shift = 0;
    for (;;) {
      if (pos >= bytes.length) throw new Bad("truncated varint");
      const b = bytes[pos++];
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return [value, pos];
      shift += 7;
      if (shift > 49) throw new Bad("varint too long");
    }
  }

  // A binary CID at `pos`: {bytes, codec, code, digest, end}.
  function readCid(bytes, pos) {
    const start = pos;
    if (bytes[pos] === 0x12 && bytes[pos + 1] === 0x20) {  // CIDv0: a bare sha2-256 multihash
      return { codec: DAG_PB, code: SHA2_256, digest: bytes.subarray(pos + 2, pos + 34),
               bytes: bytes.subarray(start, pos + 34), end: pos + 34 };
    }
    let version, codec, code, size;
    [version, pos] = varint(bytes, pos);
    if (version !== 1) throw new Bad("unsupported CID version " + version);
    [codec, pos] = varint(bytes, pos);
    [code, pos] = varint(bytes, pos);
    [size, pos] = varint(bytes, pos);
    if (pos + size > bytes.length) throw new Bad("truncated CID");
    return { codec, code, digest: bytes.subarray(pos, pos + size),
             bytes: bytes.subarray(start, pos + size), end: pos + size };
  }

  // CAR v1: header (skipped: the root we trust is the chain's, not the CAR's), then
  // sections of varint length, CID, block bytes.
  function* carBlocks(bytes) {
    let [headerLength, pos] = varint(bytes, 0);
    pos += headerLength;
    while (pos < bytes.length) {
      let length;
      [length, pos] = varint(bytes, pos);
      const end = pos + length;
      if (end > bytes.length) throw new Bad("truncated CAR section");
      const cid = readCid(bytes, pos);
      yield { cid, data: bytes.subarray(cid.end, end) };
      pos = end;
    }
  }

  async function verifyBlock(cid, data) {
    if (cid.code === IDENTITY) return equal(cid.digest, data);
    if (cid.code !== SHA2_256) throw new Bad("unsupported multihash 0x" + cid.code.toString(16));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    return equal(digest, cid.digest);
  }

  // Protobuf fields of a message: [{field, wire, value}] (varints and length-delimited).
  function fields(bytes) {
    const out = [];
    let pos = 0;
    while (pos < bytes.length) {
      let key;
      [key, pos] = varint(bytes, pos);
      const field = Math.floor(key / 8), wire = key & 7;
      if (wire === 0) {
        let value;
        [value, pos] = varint(bytes, pos);
        out.push({ field, wire, value });
      } else if (wire === 2) {
        let length;
        [length, pos] = varint(bytes, pos);
        if (pos + length > bytes.length) throw new Bad("truncated protobuf field");
        out.push({ field, wire, value: bytes.subarray(pos, pos + length) });
        pos += length;
      } else {
        throw new Bad("unexpected protobuf wire type " + wire);
      }
    }
    return out;
  }

  // dag-pb PBNode: Links (field 2: Hash 1, Name 2, Tsize 3) and Data (field 1).
  function decodeNode(bytes) {
    const node = { links: [], data: new Uint8Array(0) };
    for (const f of fields(bytes)) {
      if (f.field === 1 && f.wire === 2) node.data = f.value;
      else if (f.field === 2 && f.wire === 2) {
        const link = { name: "", cid: null };
        for (const g of fields(f.value)) {
          if (g.field === 1 && g.wire === 2) link.cid = readCid(g.value, 0);
          else if (g.field === 2 && g.wire === 2) link.name = new TextDecoder().decode(g.value);
        }
        if (!link.cid) throw new Bad("dag-pb link without a hash");
        node.links.push(link);
      }
    }
    return node;
  }

  // UnixFS Data: Type (1), Data (2).
  function unixfs(bytes) {
    const out = { type: null, data: new Uint8Array(0) };
    for (const f of fields(bytes)) {
      if (f.field === 1 && f.wire === 0) out.type = f.value;
      else if (f.field === 2 && f.wire === 2) out.data = f.value;
    }
    return out;
  }

  class Blocks {
    constructor() { this.map = new Map(); }
    get(cid) {
      const data = this.map.get(hex(cid.bytes));
      if (data === undefined) throw new Bad("the gateway left out block " + hex(cid.bytes).slice(0, 16) + "…");
      return data;
    }
  }

  // A file's bytes from verified blocks (raw leaf, or a dag-pb file with children in order).
  function fileBytes(blocks, cid, limit) {
    const parts = [];
    let total = 0;
    const visit = (c) => {
      const data = blocks.get(c);
      if (c.codec === RAW) { parts.push(data); total += data.length; }
      else if (c.codec === DAG_PB) {
        const node = decodeNode(data);
        const fs = unixfs(node.data);
        if (fs.type !== 2 && fs.type !== 0) throw new Bad("not a UnixFS file");
        if (fs.data.length) { parts.push(fs.data); total += fs.data.length; }
        for (const link of node.links) visit(link.cid);
      } else throw new Bad("unexpected codec 0x" + c.codec.toString(16));
      if (total > limit) throw new Bad("the file is larger than the page's limit");
    };
    visit(cid);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const p of parts) { out.set(p, offset); offset += p.length; }
    return out;
  }

  async function readCapped(response, limit) {
    const reader = response.body.getReader();
    const chunks = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) { reader.cancel(); throw new Bad("the answer is larger than the page's limit"); }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const c of chunks) { out.set(c, offset); offset += c.length; }
    return out;
  }

  // Fetch `path` under `rootHex` from one gateway as a CAR and verify every block.
  // Resolves {blocks, root} or throws: Bad (content does not match: "not verified") or
  // any other error (the gateway is down or refused: "not retrievable").
  async function fetchVerified(gateway, rootHex, path, limit, timeoutMs) {
    const root = readCid(fromHex(rootHex), 0);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let car;
    try {
      const url = gateway + "/ipfs/" + cidText(root) + path + "?format=car" +
        (path ? "&dag-scope=entity" : "");
      const response = await fetch(url, { signal: controller.signal, mode: "cors",
                                           credentials: "omit", cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      car = await readCapped(response, limit);
    } finally {
      clearTimeout(timer);
    }
    const blocks = new Blocks();
    let count = 0;
    for (const { cid, data } of carBlocks(car)) {
      if (!(await verifyBlock(cid, data))) throw new Bad("block " + hex(cid.bytes).slice(0, 16) + "… does not match its CID");
      blocks.map.set(hex(cid.bytes), data);
      count++;
    }
    return { blocks, root, count, size: car.length };
  }

  // base32 (RFC 4648, lower case, no padding) with the multibase prefix "b".
  function cidText(cid) {
    const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    if (cid.bytes.length === 34 && cid.bytes[0] === 0x12) {
      // CIDv0 can still be asked for as its CIDv1 (dag-pb) form.
      return cidText({ bytes: Uint8Array.from([1, DAG_PB, ...cid.bytes]) });
    }
    let bits = 0, value = 0, out = "b";
    for (const byte of cid.bytes) {
      value = (value << 8) | byte; bits += 8;
      while (bits >= 5) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
    }
    if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
    return out;
  }

  function entry(blocks, root, name) {
    const dir = decodeNode(blocks.get(root));
    const link = dir.links.find((l) => l.name === name);
    if (!link) throw new Bad("the result directory has no " + name);
    return link.cid;
  }

  async function sha256Hex(bytes) {
    return "0x" + hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  }

  return { Bad, fetchVerified, fileBytes, entry, sha256Hex, cidText, readCid, fromHex, carBlocks };
})();
