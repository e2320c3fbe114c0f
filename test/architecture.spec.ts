/**
 * The shape of the program, checked: no function in stacks/ or components/ runs longer than a
 * screen, so each constructor reads as a list of named steps.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ts from "typescript";
import { projectRoot } from "../components/archive";

/** The longest a function of the deploy-time code may be, in lines, its signature and closing brace included. */
const MAX_FUNCTION_LINES = 60;

interface FunctionSpan {
  readonly where: string;
  readonly lines: number;
}

/** Every function, method, constructor and arrow function in a TypeScript file, with its length. */
export function functionSpans(file: string): FunctionSpan[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const spans: FunctionSpan[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name ? node.name.getText(source) : ts.isConstructorDeclaration(node) ? "constructor" : "(anonymous)";
      spans.push({ where: `${path.relative(projectRoot(), file)}:${start + 1} ${name}`, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return spans;
}

const sourcesUnder = (dir: string): string[] =>
  fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.join(entry.parentPath, entry.name));

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as dashes. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

/** The tracked sources of the project (not node_modules, not build output). */
function projectSources(root: string): string[] {
  return [
    "index.ts",
    ...["stacks", "components", "workers", "tools", "test", "bench", "policy"].flatMap((dir) =>
      sourcesUnder(path.join(root, dir)),
    ),
  ]
    .map((file) => path.resolve(root, file))
    .filter((file) => !file.includes(`${path.sep}fixtures${path.sep}`) && !file.endsWith("architecture.spec.ts"));
}

describe("architecture", function () {
  it("points every docs/ reference in the code at a file and heading that exist, and at nothing outside the repository", function () {
    const root = projectRoot();
    const broken: string[] = [];
    for (const file of projectSources(root)) {
      const text = fs.readFileSync(file, "utf8");
      if (/\bSPEC\b/.test(text)) broken.push(`${path.relative(root, file)} cites SPEC, a document outside the repository`);
      for (const [reference, doc, anchor] of text.matchAll(/docs\/([\w-]+\.md)(?:#([\w-]+))?/g)) {
        const target = path.join(root, "docs", doc!);
        if (!fs.existsSync(target)) {
          broken.push(`${path.relative(root, file)}: ${reference} does not exist`);
          continue;
        }
        const anchors = [...fs.readFileSync(target, "utf8").matchAll(/^#+ (.+)$/gm)].map((match) => anchorOf(match[1]!));
        if (anchor && !anchors.includes(anchor)) broken.push(`${path.relative(root, file)}: ${reference} has no such heading`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it(`keeps every function in stacks/ and components/ within ${MAX_FUNCTION_LINES} lines`, function () {
    const root = projectRoot();
    const long = ["stacks", "components"]
      .flatMap((dir) => sourcesUnder(path.join(root, dir)))
      .flatMap(functionSpans)
      .filter((span) => span.lines > MAX_FUNCTION_LINES)
      .map((span) => `${span.where} (${span.lines} lines)`);
    assert.deepEqual(long, [], "split these into named steps");
  });

  it("measures a function from its signature to its closing brace", function () {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "spans-")), "probe.ts");
    fs.writeFileSync(
      file,
      "class A {\n  constructor() {\n    const f = () => {\n      return 1;\n    };\n  }\n}\nfunction g() {}\n",
    );
    const spans = functionSpans(file).map((span) => [span.where.replace(/^.*probe\.ts:/, ""), span.lines]);
    assert.deepEqual(spans, [
      ["2 constructor", 5],
      ["3 (anonymous)", 3],
      ["8 g", 1],
    ]);
  });
});
