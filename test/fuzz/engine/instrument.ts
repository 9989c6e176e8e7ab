/**
 * Coverage instrumentation for the fuzzer (a small stand-in for Jazzer.js' instrumentor, which needs
 * a native libFuzzer addon that does not load here: see docs/fuzzing.md). Rewrites one JavaScript
 * module (tsx output) so that every function entry, both arms of every `if`, `?:`, `&&`, `||` and
 * `??`, every loop body, `case` and `catch` bumps its own byte in a shared counter map, and so that
 * the module's string and number literals are handed to the mutator as a dictionary.
 *
 *   globalThis.__fuzzCov   Uint8Array(MAP_SIZE), hit counts per site (wrapping)
 *   globalThis.__fuzzSites highest site id + 1 over all instrumented modules
 *   globalThis.__fuzzLits  literals of the instrumented modules (dictionary candidates)
 */
import ts from 'typescript'

export const MAP_SIZE = 1 << 16
const COV = '__fuzz_cov__'

export interface Instrumented {
  readonly code: string
  /** Next free site id. */
  readonly nextId: number
}

/** Instruments `source` (JavaScript), numbering sites from `firstId`. */
export function instrumentSource (source: string, fileName: string, firstId: number): Instrumented {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS)
  let id = firstId
  const literals = new Set<string | number>()
  const f = ts.factory
  const bump = (): ts.Expression => f.createPostfixIncrement(
    f.createElementAccessExpression(f.createIdentifier(COV), f.createNumericLiteral((id++) % MAP_SIZE)))
  const bumpStmt = (): ts.Statement => f.createExpressionStatement(bump())
  const withBump = (e: ts.Expression): ts.Expression => f.createParenthesizedExpression(f.createComma(bump(), e))
  const block = (s: ts.Statement): ts.Block => ts.isBlock(s)
    ? f.updateBlock(s, [bumpStmt(), ...s.statements])
    : f.createBlock([bumpStmt(), s], true)

  const transformer: ts.TransformerFactory<ts.SourceFile> = (context) => {
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
        if (node.text.length > 0 && node.text.length <= 64) literals.add(node.text)
        return node
      }
      if (ts.isNumericLiteral(node)) {
        const v = Number(node.text)
        if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) literals.add(v)
        return node
      }
      const n = ts.visitEachChild(node, visit, context)
      return rewrite(n)
    }
    return (sf) => ts.visitNode(sf, visit) as ts.SourceFile
  }

  function rewrite (n: ts.Node): ts.Node {
    if (ts.isIfStatement(n)) {
      const elseStmt = n.elseStatement === undefined
        ? f.createBlock([bumpStmt()], true)
        : ts.isIfStatement(n.elseStatement) ? n.elseStatement : block(n.elseStatement)
      return f.updateIfStatement(n, n.expression, block(n.thenStatement), elseStmt)
    }
    if (ts.isConditionalExpression(n)) {
      return f.updateConditionalExpression(n, n.condition, n.questionToken, withBump(n.whenTrue), n.colonToken, withBump(n.whenFalse))
    }
    if (ts.isBinaryExpression(n)) {
      const k = n.operatorToken.kind
      if (k === ts.SyntaxKind.AmpersandAmpersandToken || k === ts.SyntaxKind.BarBarToken || k === ts.SyntaxKind.QuestionQuestionToken) {
        return f.updateBinaryExpression(n, n.left, n.operatorToken, withBump(n.right))
      }
      return n
    }
    if (ts.isForStatement(n)) return f.updateForStatement(n, n.initializer, n.condition, n.incrementor, block(n.statement))
    if (ts.isForOfStatement(n)) return f.updateForOfStatement(n, n.awaitModifier, n.initializer, n.expression, block(n.statement))
    if (ts.isForInStatement(n)) return f.updateForInStatement(n, n.initializer, n.expression, block(n.statement))
    if (ts.isWhileStatement(n)) return f.updateWhileStatement(n, n.expression, block(n.statement))
    if (ts.isDoStatement(n)) return f.updateDoStatement(n, block(n.statement), n.expression)
    if (ts.isCaseClause(n)) return f.updateCaseClause(n, n.expression, [bumpStmt(), ...n.statements])
    if (ts.isDefaultClause(n)) return f.updateDefaultClause(n, [bumpStmt(), ...n.statements])
    if (ts.isCatchClause(n)) return f.updateCatchClause(n, n.variableDeclaration, block(n.block))
    if (ts.isArrowFunction(n)) {
      const body = ts.isBlock(n.body) ? block(n.body) : withBump(n.body)
      return f.updateArrowFunction(n, n.modifiers, n.typeParameters, n.parameters, n.type, n.equalsGreaterThanToken, body)
    }
    if ((ts.isFunctionDeclaration(n) || ts.isFunctionExpression(n) || ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n) ||
      ts.isGetAccessorDeclaration(n) || ts.isSetAccessorDeclaration(n)) && n.body !== undefined) {
      return bodyWithBump(n, block(n.body))
    }
    return n
  }

  function bodyWithBump (n: ts.FunctionLikeDeclaration, body: ts.Block): ts.Node {
    if (ts.isFunctionDeclaration(n)) {
      return f.updateFunctionDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters,
        n.type, body)
    }
    if (ts.isFunctionExpression(n)) {
      return f.updateFunctionExpression(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters,
        n.type, body)
    }
    if (ts.isMethodDeclaration(n)) {
      return f.updateMethodDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.questionToken, n.typeParameters,
        n.parameters, n.type, body)
    }
    if (ts.isConstructorDeclaration(n)) return f.updateConstructorDeclaration(n, n.modifiers, n.parameters, body)
    if (ts.isGetAccessorDeclaration(n)) return f.updateGetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, n.type, body)
    if (ts.isSetAccessorDeclaration(n)) return f.updateSetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, body)
    return n
  }

  const out = ts.transform(file, [transformer])
  const printed = ts.createPrinter({ removeComments: true }).printFile(out.transformed[0] as ts.SourceFile)
  out.dispose()
  const prologue = `const ${COV} = (globalThis.__fuzzCov ??= new Uint8Array(${MAP_SIZE}));` +
    `globalThis.__fuzzSites = Math.max(globalThis.__fuzzSites ?? 0, ${Math.min(id, MAP_SIZE)});` +
    `(globalThis.__fuzzLits ??= []).push(...${JSON.stringify([...literals])});\n`
  return { code: prologue + printed, nextId: id }
}
