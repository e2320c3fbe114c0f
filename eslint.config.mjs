// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
          patterns: [
            { group: ["@pulumi/*"], message: "workers/ is Lambda runtime code; @pulumi/* would land in every archive." },
            {
              group: ["**/components/**", "**/stacks/**", "**/tools/**"],
              message: "workers/ never imports deploy-time modules.",
            },
          ],
        },
      ],
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
