// CI's check of the shipped build: rebuild into a temporary directory, compare with the copies
// in src/channelworks/static/channelworks/, and keep each build under the size budget
// (minified + gzipped). Exits non-zero on any difference or overrun.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { FILES, STATIC, buildInto } from "./build.mjs";

const BUDGET = 10 * 1024; // bytes, minified + gzipped
const outdir = mkdtempSync(join(tmpdir(), "channelworks-client-"));
let failed = false;
try {
  await buildInto(outdir);
  for (const file of FILES) {
    const built = readFileSync(join(outdir, file));
    let shipped = null;
    try {
      shipped = readFileSync(join(STATIC, file));
    } catch {}
    if (!shipped || !built.equals(shipped)) {
      console.error(`FAIL ${file}: the shipped copy differs from a build of the sources; run npm run build`);
      failed = true;
    }
    const gzipped = gzipSync(built, { level: 9 }).length;
    const verdict = gzipped <= BUDGET ? "ok" : "FAIL";
    console.log(`${verdict} ${file}: ${built.length} B minified, ${gzipped} B gzipped (budget ${BUDGET} B)`);
    failed ||= gzipped > BUDGET;
  }
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
