// Independent reference for the CID tests: the IPFS project's own importer
// (npm ipfs-unixfs-importer) under the IPIP-499 profile `unixfs-v1-2025`.
//
// Usage: node reference_importer.mjs '<json>'  where json is
//   {"paths": [...], "chunkSize"?: n, "maxChildrenPerNode"?: n,
//    "shardSplitThresholdBytes"?: n, "shardFanoutBits"?: n, "murmur"?: [strings]}
// Prints {"cids": [root CID per path], "murmur": [hex of the HAMT hash per string]}.
// Symlinks are followed (framecast imports what they point at); only empty
// directories get their own entry, so the sharding estimate sees only final state.
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { murmur3128 } from '@multiformats/murmur3'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

function * entries (absPath, relPath) {
  const st = statSync(absPath)
  if (st.isDirectory()) {
    const names = readdirSync(absPath).sort()
    if (names.length === 0) {
      yield { path: relPath }
    }
    for (const name of names) {
      yield * entries(join(absPath, name), `${relPath}/${name}`)
    }
  } else {
    yield { path: relPath, content: createReadStream(absPath) }
  }
}

async function rootCid (path, options) {
  const base = basename(path)
  const blockstore = new MemoryBlockstore()
  let last
  for await (const entry of importer(entries(path, base), blockstore, options)) {
    if (entry.path === base) {
      last = entry
    }
  }
  return last.cid.toString()
}

const args = JSON.parse(process.argv[2])
const options = { profile: 'unixfs-v1-2025' }
if (args.chunkSize != null) options.chunker = fixedSize({ chunkSize: args.chunkSize })
if (args.maxChildrenPerNode != null) options.layout = balanced({ maxChildrenPerNode: args.maxChildrenPerNode })
if (args.shardSplitThresholdBytes != null) options.shardSplitThresholdBytes = args.shardSplitThresholdBytes
if (args.shardFanoutBits != null) options.shardFanoutBits = args.shardFanoutBits

const cids = []
for (const path of args.paths ?? []) {
  cids.push(await rootCid(path, options))
}
const murmur = []
for (const s of args.murmur ?? []) {
  const digest = await murmur3128.encode(new TextEncoder().encode(s))
  murmur.push(Buffer.from(digest).toString('hex'))
}
process.stdout.write(JSON.stringify({ cids, murmur }) + '\n')
