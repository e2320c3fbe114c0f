// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Lambda runtime code travels into archives: it never pulls in the infrastructure SDK or deploy-time modules. */
const deployBoundary = [
  { group: ["@pulumi/*"], message: "workers/ is Lambda runtime code; @pulumi/* would land in every archive." },
  { group: ["**/components/**", "**/stacks/**", "**/tools/**"], message: "workers/ never imports deploy-time modules." },
];
/** Classic zod costs every cold start ~100 ms to load: schemas take `z` (zod/mini, English messages) from workers/shared/zod.ts. */
const runtimeBoundary = [
  ...deployBoundary,
  { regex: "^zod(/.*)?$", message: "workers/ import z from workers/shared/zod.ts (zod/mini with English messages), not zod." },
];
const sharedBoundary = { regex: "^\\.\\./\\.\\./", message: "workers/shared/ never imports a worker." };

export default tseslint.config(
  { ignores: ["build/**", "node_modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
      "@typescript-eslint/no-require-imports": "off",
      // A server's handler refers to the object wrapping the server, assigned once it listens.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Lambda runtime code: it travels into archives, so it never pulls in the infrastructure SDK
    // or the deploy-time modules.
    files: ["workers/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: runtimeBoundary,
        },
      ],
    },
  },
  {
    // Closure serialization rewrites classes, and an Error subclass reaches the archive without its
    // message: workers build plain objects and functions (namedError for errors).
    files: ["workers/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "ClassDeclaration, ClassExpression",
          message: "workers/ holds no classes: closure serialization rewrites them.",
        },
      ],
    },
  },
  {
    // A worker folder imports shared code, never another worker: what two workers share lives in
    // workers/shared/.
    files: ["workers/*/**/*.ts"],
    ignores: ["workers/shared/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...runtimeBoundary,
            {
              regex: "^\\.\\./(?!shared/)",
              message: "a worker never imports another worker; move what they share to workers/shared/.",
            },
          ],
        },
      ],
    },
  },
  {
    // Shared code serves every worker and knows none of them.
    files: ["workers/shared/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [...runtimeBoundary, sharedBoundary] }],
    },
  },
  {
    // The one module that imports zod itself.
    files: ["workers/shared/zod.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [...deployBoundary, sharedBoundary] }],
    },
  },
  {
    // components/ know no particular stack or worker.
    files: ["components/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["**/stacks/**", "**/tools/**"], message: "components/ know no particular stack." }] },
      ],
    },
  },
);
