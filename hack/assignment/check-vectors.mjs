// A second implementation of Croupier's assignment hash contract, in JavaScript as GrowthBook's SDK writes it
// (UTF-16 code units via charCodeAt, double arithmetic for the variant ranges). Checks every vector of the file given
// as the first argument and prints one JSON line: {"checked": n, "failures": [...]}. Exit status 1 on a failure.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

function fnv1a32(str) {
  let hval = 0x811c9dc5;
  const l = str.length;
  for (let i = 0; i < l; i++) {
    hval ^= str.charCodeAt(i);
    hval += (hval << 1) + (hval << 4) + (hval << 7) + (hval << 8) + (hval << 24);
  }
  return hval >>> 0;
}

function bucket(algorithm, salt, unitId) {
  if (algorithm === "sha256-v1") {
    const digest = createHash("sha256").update(salt + ":" + unitId, "utf8").digest();
    return Number(digest.readBigUInt64BE(0) % 10000n);
  }
  if (algorithm === "fnv1a32-v2") return fnv1a32(fnv1a32(salt + unitId) + "") % 10000;
  if (algorithm === "fnv1a32-v1") return fnv1a32(unitId + salt) % 1000;
  throw new Error("unknown algorithm " + algorithm);
}

function fraction(algorithm, salt, unitId) {
  return bucket(algorithm, salt, unitId) / (algorithm === "fnv1a32-v1" ? 1000 : 10000);
}

function assign(algorithm, salt, unitId, weights) {
  if (algorithm === "sha256-v1") {
    const b = bucket(algorithm, salt, unitId);
    let upper = 0;
    for (const [name, w] of weights) {
      upper += w * 100;
      if (b < upper) return name;
    }
    return null;
  }
  // GrowthBook's getBucketRanges (coverage 1) and chooseVariation.
  const n = fraction(algorithm, salt, unitId);
  let cumulative = 0;
  const ranges = weights.map(([, w]) => {
    const start = cumulative;
    cumulative += w / 100;
    return [start, start + w / 100];
  });
  for (let i = 0; i < ranges.length; i++) {
    if (n >= ranges[i][0] && n < ranges[i][1]) return weights[i][0];
  }
  return null;
}

const vectors = JSON.parse(readFileSync(process.argv[2], "utf8"));
const failures = [];
let checked = 0;
for (const v of vectors.hash) {
  const b = bucket(v.algorithm, v.salt, v.unitId);
  const f = fraction(v.algorithm, v.salt, v.unitId);
  if (b !== v.bucket || f !== v.fraction) failures.push({ ...v, gotBucket: b, gotFraction: f });
  checked++;
}
for (const v of vectors.assign) {
  const got = assign(v.algorithm, v.salt, v.unitId, v.weights);
  if (got !== v.variant) failures.push({ ...v, got });
  checked++;
}
console.log(JSON.stringify({ checked, failures }));
process.exit(failures.length ? 1 : 0);
