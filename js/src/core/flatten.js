// Turn an expanded recipe tree into the flat canonical form (docs/flat-form.md).
// Defaults are read from the published flat schema, never restated here.

import { fingerprint as computeFingerprint } from './canonical.js';
import { deepCopy, hasKey, isObject, setKey } from './data.js';
import { RecipeSemanticError, SchemaValidationError } from './errors.js';
import { SCHEMAS, schemaDiagnostics } from './schemacheck.js';
import { show } from './show.js';
import { joinPointer } from './yamlio.js';

const EXMY = /^[Ee](\d+)[Mm](\d+)$/;

const ATTRIBUTE_PROPERTIES = SCHEMAS.flat.$defs.attributes.properties;
const ATTRIBUTE_DEFAULTS = Object.fromEntries(
  Object.entries(ATTRIBUTE_PROPERTIES).map(([name, spec]) => [name, spec.default]),
);
const ROTATE_DEFAULTS = Object.fromEntries(
  Object.entries(ATTRIBUTE_PROPERTIES.rotate.properties).map(([name, spec]) => [name, spec.default]),
);
const DEFAULT_DESCRIPTION = String(SCHEMAS.flat.properties.metadata.properties.description.default);
const DEFAULT_ALGORITHM = String(SCHEMAS.recipe.$defs.quantize.properties.algorithm.default);

/** "e4m3" -> [4, 3]; other values unchanged. */
export function exmy(value) {
  if (typeof value === 'string') {
    const match = EXMY.exec(value);
    if (match) return [Number(match[1]), Number(match[2])];
  }
  return value;
}

/** All nineteen attributes, defaults filled, ExMy strings turned into pairs. */
export function normalizeAttributes(cfg) {
  const attributes = deepCopy(ATTRIBUTE_DEFAULTS);
  for (const key of Object.keys(cfg)) {
    let value = deepCopy(cfg[key]);
    if (key === 'num_bits') value = exmy(value);
    else if (key === 'block_sizes' && isObject(value)) {
      const converted = {};
      for (const k of Object.keys(value)) setKey(converted, k, k === 'scale_bits' ? exmy(value[k]) : value[k]);
      value = converted;
    } else if (key === 'rotate' && isObject(value)) {
      value = { ...deepCopy(ROTATE_DEFAULTS), ...value };
    }
    setKey(attributes, key, value);
  }
  return attributes;
}

function isEmptyCfg(cfg) {
  if (isObject(cfg)) return Object.keys(cfg).length === 0;
  if (Array.isArray(cfg)) return cfg.every((item) => isObject(item) && Object.keys(item).length === 0);
  return false;
}

function pythonEquals(a, b) {
  // Python's == on JSON data: True == 1, 1 == 1.0.
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pythonEquals(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => hasKey(b, k) && pythonEquals(a[k], b[k]));
  }
  const number = (v) => (typeof v === 'boolean' ? Number(v) : v);
  return number(a) === number(b);
}

class Flattener {
  constructor(resolution, hash) {
    this.resolution = resolution;
    this.hash = hash;
    this.origins = new Map();
    this.problems = [];
  }

  note(pointer, object) {
    const origin = this.resolution.origin(object);
    if (origin) this.origins.set(pointer, origin);
  }

  locate(pointer) {
    let at = pointer;
    for (;;) {
      if (this.origins.has(at)) return this.origins.get(at);
      if (!at) return null;
      at = at.slice(0, at.lastIndexOf('/'));
    }
  }

  problem(message, pointer, hint = null, { key = null, error = RecipeSemanticError } = {}) {
    const origin = this.locate(pointer);
    const suffix = key ? `/${key}` : '';
    const [line, column] = origin ? origin.position(suffix) : [null, null];
    this.problems.push(
      error.diagnostic(message, {
        file: origin ? origin.file : this.resolution.recipe,
        line,
        column,
        pointer: (origin ? origin.pointer : pointer) + suffix,
        chain: origin ? origin.chain : [],
        hint,
      }),
    );
  }

  /** The longest prefix of `pointer` whose origin is known. */
  locatedAt(pointer) {
    let at = pointer;
    while (at && !this.origins.has(at)) at = at.slice(0, at.lastIndexOf('/'));
    return at;
  }

  entry(raw, pointer) {
    this.note(pointer, raw);
    if (!isObject(raw)) {
      this.problem(`a quant_cfg entry must be a mapping, got ${show(raw)}`, pointer);
      return {};
    }
    const name = hasKey(raw, 'quantizer_name') ? raw.quantizer_name : null;
    if (!hasKey(raw, 'quantizer_name')) {
      this.problem(
        "quant_cfg entry has no 'quantizer_name'",
        pointer,
        "every entry names the quantizers it applies to, e.g. quantizer_name: '*weight_quantizer'",
      );
    }
    let cfg = hasKey(raw, 'cfg') ? raw.cfg : null;
    const enable = hasKey(raw, 'enable') ? raw.enable : null;
    if (!hasKey(raw, 'cfg') && !hasKey(raw, 'enable')) {
      this.problem(
        `quant_cfg entry for ${show(name)} gives neither 'cfg' nor 'enable'`,
        pointer,
        'an entry without either has no effect; add enable: true/false or a cfg',
      );
    }
    if (isEmptyCfg(cfg) && cfg !== null) {
      if (enable === false) {
        cfg = null;
      } else {
        this.problem(
          `empty 'cfg' for ${show(name)} would reset every attribute to its default`,
          pointer,
          "drop 'cfg' to keep the attributes, or set enable: false to disable",
          { key: 'cfg' },
        );
      }
    } else if (isObject(cfg) && pythonEquals(cfg, { enable: true })) {
      this.problem(
        `'cfg: {enable: true}' for ${show(name)} gives no attribute`,
        pointer,
        "use the entry's own 'enable: true' to switch quantizers on",
        { key: 'cfg' },
      );
    }
    (Array.isArray(cfg) ? cfg : [cfg]).forEach((attributes, index) => {
      const blocks = isObject(attributes) && hasKey(attributes, 'block_sizes') ? attributes.block_sizes : null;
      if (isObject(blocks) && blocks.type === 'dynamic') {
        const axes = Object.keys(blocks).filter((k) => /^[0-9]+$/.test(k.replace(/^-+/, '')));
        if (axes.length !== 1) {
          const where = isObject(cfg) ? 'cfg' : `cfg/${index}`;
          this.note(`${pointer}/${where}`, attributes);
          this.problem(
            `dynamic block quantization quantizes exactly one axis, got ${axes.length}`,
            `${pointer}/${where}`,
            'give one axis key, usually -1 (the last axis)',
            { key: 'block_sizes' },
          );
        }
      }
    });
    if (isObject(cfg)) {
      this.note(joinPointer(pointer, 'cfg'), raw.cfg);
      cfg = normalizeAttributes(cfg);
    } else if (Array.isArray(cfg)) {
      cfg = cfg.map((item, index) => {
        this.note(`${pointer}/cfg/${index}`, item);
        return isObject(item) ? normalizeAttributes(item) : item;
      });
    }
    return {
      quantizer_name: name,
      parent_class: hasKey(raw, 'parent_class') ? raw.parent_class : null,
      enable: enable !== null ? enable : cfg !== null,
      cfg,
    };
  }

  flatten() {
    const tree = this.resolution.tree;
    this.note('', tree);
    const metadata = truthy(tree.metadata) ? tree.metadata : {};
    this.note('/metadata', metadata);
    const quantize = truthy(tree.quantize) ? tree.quantize : {};
    this.note('/quantize', quantize);
    if (!hasKey(quantize, 'quant_cfg')) {
      this.problem(
        "the quantize section has no 'quant_cfg'",
        '/quantize',
        "list the quantizer rules, starting with {quantizer_name: '*', enable: false}",
      );
    }
    let algorithm = hasKey(quantize, 'algorithm') ? quantize.algorithm : DEFAULT_ALGORITHM;
    if (typeof algorithm === 'string') {
      algorithm = { method: algorithm };
    } else {
      this.note('/quantize/algorithm', algorithm);
      algorithm = deepCopy(algorithm);
      if (isObject(algorithm) && !hasKey(algorithm, 'method')) {
        this.problem("the algorithm mapping has no 'method'", '/quantize/algorithm');
      } else if (isObject(algorithm)) {
        // Options merged from a snippet are checked against the method they end up with.
        for (const found of schemaDiagnostics(algorithm, null, null, { definition: 'algorithm_object' })) {
          this.problem(found.message, '/quantize/algorithm', found.hint, {
            key: found.pointer.replace(/^\/+/, '') || null,
            error: SchemaValidationError,
          });
        }
      }
    }
    const rawEntries = truthy(quantize.quant_cfg) ? quantize.quant_cfg : [];
    const entries = [];
    const clean = [];
    Array.from(rawEntries).forEach((raw, index) => {
      const before = this.problems.length;
      entries.push(this.entry(raw, `/quantize/quant_cfg/${index}`));
      if (this.problems.length === before) clean.push(index);
    });
    const flat = {
      $schema: SCHEMAS.flat.$id,
      metadata: {
        recipe_type: hasKey(metadata, 'recipe_type') ? metadata.recipe_type : null,
        description: hasKey(metadata, 'description') ? metadata.description : DEFAULT_DESCRIPTION,
      },
      quantize: {
        algorithm,
        quant_cfg: entries,
        effective_bits: hasKey(quantize, 'effective_bits') ? quantize.effective_bits : null,
      },
    };
    if (this.problems.length) {
      // Every problem at once: the entries without one are still checked on their own.
      for (const index of clean) {
        const pointer = `/quantize/quant_cfg/${index}`;
        for (const found of schemaDiagnostics(entries[index], null, null, { schema: 'flat', definition: 'entry' })) {
          this.problems.push(this.located(found, pointer + found.pointer));
        }
      }
      const Cls = this.problems[0].code === 'schema' ? SchemaValidationError : RecipeSemanticError;
      throw new Cls(this.problems);
    }
    flat.fingerprint = computeFingerprint(flat, this.hash);
    this.check(flat);
    return flat;
  }

  /** Validate against the flat schema; report problems where they were written. */
  check(flat) {
    const found = schemaDiagnostics(flat, null, null, { schema: 'flat' });
    if (found.length) throw new SchemaValidationError(found.map((d) => this.located(d, d.pointer)));
  }

  /** A flat-schema problem at `pointer` of the flat form, where it was written. */
  located(diagnostic, pointer) {
    const origin = this.locate(pointer);
    // The key may come from a snippet merged into this mapping; name its path anyway.
    const suffix = pointer.slice(this.locatedAt(pointer).length);
    const [line, column] = origin ? origin.position(suffix) : [null, null];
    return SchemaValidationError.diagnostic(diagnostic.message, {
      file: origin ? origin.file : this.resolution.recipe,
      line,
      column,
      pointer: origin ? origin.pointer + suffix : pointer,
      chain: origin ? origin.chain : [],
      hint: diagnostic.hint,
    });
  }
}

// Python truthiness of JSON values, for `x or default`.
function truthy(value) {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return true;
}

/**
 * The flat canonical document of an expanded recipe.
 * @param {import('./resolver.js').Resolution} resolution
 * @param {{provenance?: boolean, hash?: (bytes: Uint8Array) => string}} [options]
 */
export function flatten(resolution, { provenance = false, hash } = {}) {
  const flattener = new Flattener(resolution, hash);
  const flat = flattener.flatten();
  if (provenance) {
    const entries = flat.quantize.quant_cfg.map((_, index) => {
      const origin = flattener.origins.get(`/quantize/quant_cfg/${index}`);
      return {
        file: origin ? origin.file : resolution.recipe,
        line: origin ? origin.line || 1 : 1,
        chain: origin ? [...origin.chain] : [],
      };
    });
    flat.provenance = { recipe: resolution.recipe, entries };
  }
  return flat;
}
