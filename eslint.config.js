// ESLint flat config: neostandard style plus type-aware typescript-eslint rules that matter for
// socket code (floating promises in event handlers kill a daemon).
import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

const nodeTest = { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }

export default [
  { ignores: ['dist/**', 'node_modules/**', 'deploy/**/*.json'] },
  ...neostandard({ ts: true }),
  {
    // One line limit for code and comments; a long string, template literal, URL or regular expression
    // is not split just to fit (splitting a log message or a pattern hides it from grep).
    rules: {
      '@stylistic/max-len': ['error', {
        code: 150,
        ignoreUrls: true,
        ignoreStrings: true,
        ignoreTemplateLiterals: true,
        ignoreRegExpLiterals: true
      }]
    }
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTest] }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-redeclare': 'off',
      'no-redeclare': 'off',
      'max-depth': ['error', 4],
      'max-nested-callbacks': ['error', 4],
      complexity: ['warn', 15],
      curly: ['error', 'multi-line'],
      'max-lines': ['warn', { max: 300, skipBlankLines: true, skipComments: true }],
      'no-console': 'error'
    }
  },
  {
    files: ['shared/src/codec/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['node:net', 'net', 'pino', 'prom-client', 'fastify', 'node:fs', 'node:dns', 'koffi'],
        patterns: ['../net/*', '../config/*', '../mgmt/*']
      }]
    }
  },
  {
    files: ['shared/src/net/**/*.ts', 'concentrator/src/**/*.ts', 'cpe/src/**/*.ts'],
    ignores: ['**/mgmt/**', '**/main.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['fastify'] }]
    }
  },
  {
    files: ['test/**/*.ts', 'lab/**/*.ts', '**/main.ts', 'shared/src/config/**/*.ts'],
    rules: { 'no-console': 'off', 'max-lines': 'off', 'max-nested-callbacks': ['error', 6] }
  }
]
