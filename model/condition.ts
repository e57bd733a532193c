/**
 * Safe evaluation of Argo Rollouts analysis conditions (`successCondition`, `failureCondition`).
 *
 * Expressions are parsed by jsep into an AST and interpreted here over a closed set of operators
 * and functions: no `eval`, no `new Function`, no property access beyond indexing and `length`.
 * Evaluation is pure and deterministic, so the same code decides verdicts in activities and in
 * workflow code. Supported syntax follows the subset of expr-lang that Argo users write:
 * `result < 0.01`, `result[0] >= 0.95 && result[1] < 200`, `len(result) > 0`, `isNaN(result)`,
 * `result == "ok"`, `and`/`or`/`not`, `default(result, 0) < 5`. Closures (`all(result, {# > 1})`)
 * are not supported and are reported as a parse error.
 */
import jsep from 'jsep';

jsep.addBinaryOp('and', 2);
jsep.addBinaryOp('or', 1);
jsep.addUnaryOp('not');

export class ConditionError extends Error {
  override name = 'ConditionError';
}

type Value = unknown;

const FUNCTIONS: Record<string, (...args: Value[]) => Value> = {
  len: (v) => {
    if (Array.isArray(v) || typeof v === 'string') return v.length;
    throw new ConditionError('len() takes an array or a string');
  },
  isNaN: (v) => typeof v === 'number' && Number.isNaN(v),
  isInf: (v) => typeof v === 'number' && (v === Infinity || v === -Infinity),
  abs: (v) => Math.abs(num(v, 'abs()')),
  min: (...vs) => Math.min(...flatNumbers(vs, 'min()')),
  max: (...vs) => Math.max(...flatNumbers(vs, 'max()')),
  sum: (...vs) => flatNumbers(vs, 'sum()').reduce((a, b) => a + b, 0),
  avg: (...vs) => {
    const ns = flatNumbers(vs, 'avg()');
    if (ns.length === 0) throw new ConditionError('avg() of nothing');
    return ns.reduce((a, b) => a + b, 0) / ns.length;
  },
  default: (v, fallback) => (v === undefined || v === null || (Array.isArray(v) && v.length === 0) ? fallback : v),
  asInt: (v) => Math.trunc(num(v, 'asInt()')),
  asFloat: (v) => num(v, 'asFloat()'),
};

function num(v: Value, where: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  throw new ConditionError(`${where} needs a number, got ${describe(v)}`);
}

function flatNumbers(vs: Value[], where: string): number[] {
  return vs.flatMap((v) => (Array.isArray(v) ? v : [v])).map((v) => num(v, where));
}

function describe(v: Value): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null || v === undefined) return 'nothing';
  return `${typeof v} ${JSON.stringify(v)}`;
}

const cache = new Map<string, jsep.Expression>();

/** Parses once and caches; throws ConditionError naming the problem. */
export function parseCondition(expression: string): jsep.Expression {
  const hit = cache.get(expression);
  if (hit) return hit;
  let ast: jsep.Expression;
  try {
    ast = jsep(expression);
  } catch (err) {
    throw new ConditionError(`cannot parse "${expression}": ${(err as Error).message}`);
  }
  checkAst(ast);
  cache.set(expression, ast);
  return ast;
}

const BINARY = new Set(['==', '!=', '<', '<=', '>', '>=', '&&', '||', 'and', 'or', '+', '-', '*', '/', '%']);
const UNARY = new Set(['!', '-', '+', 'not']);

/** Rejects anything outside the supported grammar before evaluation, so lint can report it. */
function checkAst(node: jsep.Expression): void {
  switch (node.type) {
    case 'Literal':
      return;
    case 'Identifier': {
      const name = (node as jsep.Identifier).name;
      if (!['result', 'true', 'false', 'NaN', 'Infinity', 'nil', 'null'].includes(name)) {
        throw new ConditionError(`unknown name "${name}" (conditions can use "result")`);
      }
      return;
    }
    case 'BinaryExpression': {
      const b = node as jsep.BinaryExpression;
      if (!BINARY.has(b.operator)) throw new ConditionError(`operator "${b.operator}" is not supported`);
      checkAst(b.left);
      checkAst(b.right);
      return;
    }
    case 'UnaryExpression': {
      const u = node as jsep.UnaryExpression;
      if (!UNARY.has(u.operator)) throw new ConditionError(`operator "${u.operator}" is not supported`);
      checkAst(u.argument);
      return;
    }
    case 'MemberExpression': {
      const m = node as jsep.MemberExpression;
      checkAst(m.object);
      if (m.computed) checkAst(m.property);
      else if ((m.property as jsep.Identifier).name !== 'length') {
        throw new ConditionError('only indexing (result[0]) and .length are supported on values');
      }
      return;
    }
    case 'CallExpression': {
      const c = node as jsep.CallExpression;
      const callee = c.callee as jsep.Identifier;
      if (c.callee.type !== 'Identifier' || !Object.hasOwn(FUNCTIONS, callee.name)) {
        throw new ConditionError(`unknown function (supported: ${Object.keys(FUNCTIONS).join(', ')})`);
      }
      c.arguments.forEach(checkAst);
      return;
    }
    case 'ConditionalExpression': {
      const t = node as jsep.ConditionalExpression;
      checkAst(t.test);
      checkAst(t.consequent);
      checkAst(t.alternate);
      return;
    }
    case 'ArrayExpression':
      (node as jsep.ArrayExpression).elements.forEach((e) => e && checkAst(e));
      return;
    default:
      throw new ConditionError(`expression of type ${node.type} is not supported`);
  }
}

/** Evaluates a condition against a measurement result; returns the boolean or throws ConditionError. */
export function evaluateCondition(expression: string, result: Value): boolean {
  const out = evalNode(parseCondition(expression), result);
  if (typeof out !== 'boolean') {
    throw new ConditionError(`condition "${expression}" gave ${describe(out)}, not true or false`);
  }
  return out;
}

function evalNode(node: jsep.Expression, result: Value): Value {
  switch (node.type) {
    case 'Literal':
      return (node as jsep.Literal).value;
    case 'Identifier': {
      const name = (node as jsep.Identifier).name;
      if (name === 'result') return result;
      if (name === 'true') return true;
      if (name === 'false') return false;
      if (name === 'NaN') return Number.NaN;
      if (name === 'Infinity') return Infinity;
      return null;
    }
    case 'UnaryExpression': {
      const u = node as jsep.UnaryExpression;
      const v = evalNode(u.argument, result);
      if (u.operator === '!' || u.operator === 'not') return !truthy(v);
      const n = num(v, `unary ${u.operator}`);
      return u.operator === '-' ? -n : n;
    }
    case 'BinaryExpression': {
      const b = node as jsep.BinaryExpression;
      if (b.operator === '&&' || b.operator === 'and') return truthy(evalNode(b.left, result)) && truthy(evalNode(b.right, result));
      if (b.operator === '||' || b.operator === 'or') return truthy(evalNode(b.left, result)) || truthy(evalNode(b.right, result));
      const l = evalNode(b.left, result);
      const r = evalNode(b.right, result);
      switch (b.operator) {
        case '==':
          return equal(l, r);
        case '!=':
          return !equal(l, r);
        case '<':
          return compare(l, r, b.operator) < 0;
        case '<=':
          return compare(l, r, b.operator) <= 0;
        case '>':
          return compare(l, r, b.operator) > 0;
        case '>=':
          return compare(l, r, b.operator) >= 0;
        case '+':
          return num(l, '+') + num(r, '+');
        case '-':
          return num(l, '-') - num(r, '-');
        case '*':
          return num(l, '*') * num(r, '*');
        case '/':
          return num(l, '/') / num(r, '/');
        case '%':
          return num(l, '%') % num(r, '%');
      }
      throw new ConditionError(`operator ${b.operator} is not supported`);
    }
    case 'MemberExpression': {
      const m = node as jsep.MemberExpression;
      const obj = evalNode(m.object, result);
      if (!m.computed) {
        if (Array.isArray(obj) || typeof obj === 'string') return obj.length;
        throw new ConditionError(`.length of ${describe(obj)}`);
      }
      const key = evalNode(m.property, result);
      if (Array.isArray(obj) && typeof key === 'number' && Number.isInteger(key)) {
        if (key < 0 || key >= obj.length) {
          throw new ConditionError(`index ${key} out of range: result has ${obj.length} element(s)`);
        }
        return obj[key];
      }
      if (obj !== null && typeof obj === 'object' && !Array.isArray(obj) && typeof key === 'string' && Object.hasOwn(obj, key)) {
        return (obj as Record<string, Value>)[key];
      }
      throw new ConditionError(`cannot index ${describe(obj)} with ${describe(key)}`);
    }
    case 'CallExpression': {
      const c = node as jsep.CallExpression;
      const fn = FUNCTIONS[(c.callee as jsep.Identifier).name] as (...a: Value[]) => Value;
      return fn(...c.arguments.map((a) => evalNode(a, result)));
    }
    case 'ConditionalExpression': {
      const t = node as jsep.ConditionalExpression;
      return truthy(evalNode(t.test, result)) ? evalNode(t.consequent, result) : evalNode(t.alternate, result);
    }
    case 'ArrayExpression':
      return (node as jsep.ArrayExpression).elements.map((e) => (e ? evalNode(e, result) : null));
  }
  throw new ConditionError(`expression of type ${node.type} is not supported`);
}

function truthy(v: Value): boolean {
  if (typeof v !== 'boolean') throw new ConditionError(`expected true or false, got ${describe(v)}`);
  return v;
}

function equal(l: Value, r: Value): boolean {
  if (typeof l === 'number' || typeof r === 'number') {
    if (typeof l === 'string' || typeof r === 'string') return num(l, '==') === num(r, '==');
  }
  return l === r;
}

function compare(l: Value, r: Value, op: string): number {
  if (typeof l === 'string' && typeof r === 'string') return l < r ? -1 : l > r ? 1 : 0;
  const a = num(l, op);
  const b = num(r, op);
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.NaN;
  return a - b;
}
