// Bulwark's own lint rules: the layout rules STYLE.md asks for, which no stock rule states.
import path from 'node:path';

/** Module specifiers a node's import/export/dynamic import names. */
function specifierOf(node) {
  const src = node.source;
  if (!src || src.type !== 'Literal' || typeof src.value !== 'string') return undefined;
  return src.value;
}

function visitImports(check) {
  return {
    ImportDeclaration: (node) => check(node, specifierOf(node)),
    ExportNamedDeclaration: (node) => check(node, specifierOf(node)),
    ExportAllDeclaration: (node) => check(node, specifierOf(node)),
    ImportExpression: (node) => check(node, specifierOf(node)),
  };
}

const isAncestor = (a, b) => b === a || b.startsWith(a + path.sep);

/**
 * Folders that belong to the folder above them and have no index.ts of their own:
 * proto/gen holds code generated from proto/*.proto, read only by proto/'s own modules.
 */
const PART_OF_PARENT = ['proto/gen'];

/** The folder a file counts as being in, for the rule below. */
function owningFolder(dir) {
  for (const part of PART_OF_PARENT) {
    const abs = path.resolve(process.cwd(), part);
    if (isAncestor(abs, dir)) return path.dirname(abs);
  }
  return dir;
}

/**
 * A relative import that reaches into another folder must name that folder's index.js.
 * Allowed without an index: files of the importer's own folder, and leaf modules of an
 * enclosing folder (lib/eventlog/parse.ts importing ../errors.js).
 */
export const importThroughIndex = {
  meta: { type: 'problem', schema: [], messages: { deep: "'{{spec}}' reaches into {{folder}}/ past its index.ts: import '{{suggest}}' instead" } },
  create(context) {
    const file = context.filename ?? context.getFilename();
    const dir = path.dirname(file);
    return visitImports((node, spec) => {
      if (spec === undefined || !spec.startsWith('.')) return;
      const target = path.resolve(dir, spec);
      const folder = path.dirname(target);
      if (owningFolder(folder) === owningFolder(dir) || path.basename(target) === 'index.js' || isAncestor(folder, dir)) return;
      let suggest = path.relative(dir, path.join(folder, 'index.js'));
      if (!suggest.startsWith('.')) suggest = `./${suggest}`;
      context.report({ node, messageId: 'deep', data: { spec, folder: path.relative(process.cwd(), folder), suggest } });
    });
  },
};

/** What lib/ may import besides itself: it does no I/O. */
// Pure libraries only: @noble/curves (prehashed ECDSA verification, which node:crypto
// cannot do) and yaml (policies written as YAML) do no I/O.
const LIB_ALLOWED = new Set(['node:crypto', '@sinclair/typebox', '@sinclair/typebox/compiler', '@noble/curves/nist.js', 'yaml']);

/** lib/ is the pure core: values in, values out. It imports only node:crypto, TypeBox, @noble/curves, yaml and lib/. */
export const libPurity = {
  meta: { type: 'problem', schema: [], messages: { impure: "lib/ is pure: '{{spec}}' is not allowed here (only node:crypto, @sinclair/typebox, @noble/curves/nist.js, yaml and lib/)", escape: "lib/ imports only lib/: '{{spec}}' leaves it" } },
  create(context) {
    const file = context.filename ?? context.getFilename();
    const libRoot = path.resolve(process.cwd(), 'lib');
    return visitImports((node, spec) => {
      if (spec === undefined) return;
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        if (!isAncestor(libRoot, target)) context.report({ node, messageId: 'escape', data: { spec } });
        return;
      }
      if (!LIB_ALLOWED.has(spec)) context.report({ node, messageId: 'impure', data: { spec } });
    });
  },
};

export const bulwarkPlugin = { rules: { 'import-through-index': importThroughIndex, 'lib-purity': libPurity } };
