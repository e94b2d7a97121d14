// Builds the client: dist/client.mjs (ES module) and dist/client.js (classic script, global
// `Channelworks`), minified, and copies both into the Python package's static files.
// `node scripts/build.mjs OUTDIR` builds into OUTDIR alone (scripts/check.mjs uses it).
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const STATIC = join(root, "..", "..", "src", "channelworks", "static", "channelworks");
export const FILES = ["client.js", "client.mjs"];

export async function buildInto(outdir) {
  const { name, version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const common = {
    entryPoints: [join(root, "src", "index.ts")],
    bundle: true,
    minify: true,
    target: "es2020",
    legalComments: "none",
    banner: { js: `/* ${name} ${version}, built from clients/js (BSD-3-Clause); do not edit */` },
    logLevel: "warning",
  };
  mkdirSync(outdir, { recursive: true });
  await build({ ...common, format: "esm", outfile: join(outdir, "client.mjs") });
  await build({ ...common, format: "iife", globalName: "Channelworks", outfile: join(outdir, "client.js") });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2];
  if (outdir) await buildInto(outdir);
  else {
    await buildInto(join(root, "dist"));
    mkdirSync(STATIC, { recursive: true });
    for (const file of FILES) copyFileSync(join(root, "dist", file), join(STATIC, file));
  }
}
