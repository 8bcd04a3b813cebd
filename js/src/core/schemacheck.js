// Validate documents against the published schemas and explain failures in plain words.
//
// Validity is decided by ajv (Draft 2020-12) with the schemas unchanged. When a document is
// invalid, the explanation is built from an error tree that follows Draft 2020-12 evaluation
// keyword by keyword, in schema order, the way python-jsonschema reports it (each failing
// keyword with its instance path, anyOf failures with the errors of every branch), so that the
// diagnostics - message, JSON pointer, line, order - are the ones the Python implementation
// prints. ajv's own error list cannot serve for this: through `$ref` it loses which anyOf
// branch an error belongs to, and it reports property names and unevaluated properties
// differently.

import { flatSchemaText, recipeSchemaText } from '../../schema/schemas.js';
import { validators } from '../../schema/validators.js';
import { closestMatch } from './difflib.js';
import { hasKey, isObject, writtenKeys } from './data.js';
import { SchemaValidationError, sortDiagnostics } from './errors.js';
import { describeType, pyRepr, show } from './show.js';
import { escapePointerToken, joinPointer } from './yamlio.js';

export const SCHEMAS = {
  recipe: JSON.parse(recipeSchemaText),
  flat: JSON.parse(flatSchemaText),
};
export const SCHEMA_TEXTS = { recipe: recipeSchemaText, flat: flatSchemaText };
const BY_ID = new Map(Object.values(SCHEMAS).map((schema) => [schema.$id, schema]));

// JSON Schema patterns are ECMA-262 expressions: `$` matches only at the very end (the Python
// side anchors the same way). Compiled patterns are cached.
const patternCache = new Map();
export function schemaRegExp(pattern, flags = 'u') {
  const key = `${flags}:${pattern}`;
  let compiled = patternCache.get(key);
  if (!compiled) {
    compiled = new RegExp(pattern, flags);
    patternCache.set(key, compiled);
  }
  return compiled;
}

// ------------------------------------------------------------------ ajv: validity
// Validity is decided by ajv's code for the schemas, compiled ahead of time by
// scripts/copy-assets.js (schema/validators.js): no schema is compiled at run time.

/** The precompiled ajv validator for a schema or one of its `$defs`. */
export function ajvValidator(schema = 'recipe', definition = null) {
  const id = SCHEMAS[schema].$id;
  if (definition !== null && !hasKey(SCHEMAS[schema].$defs, definition)) {
    throw new Error(`schema ${pyRepr(schema)} has no definition ${pyRepr(definition)}`);
  }
  const validate = validators[definition === null ? id : `${id}#/$defs/${definition}`];
  if (!validate) throw new Error('schema/validators.js is out of date: run npm run build');
  return validate;
}

// ------------------------------------------------------------------ the error tree
class SchemaError {
  constructor(fields) {
    this.validator = undefined;
    this.validatorValue = undefined;
    this.instance = undefined;
    this.schema = undefined;
    this.message = '';
    this.path = []; // absolute instance path
    this.relativePath = null; // set for errors inside an anyOf/oneOf, relative to it
    this.branch = null;
    this.context = [];
    Object.assign(this, fields);
  }

  fill(validator, validatorValue, instance, schema) {
    if (this.validator === undefined) {
      this.validator = validator;
      this.validatorValue = validatorValue;
      this.instance = instance;
      this.schema = schema;
    }
    return this;
  }
}

function isType(value, type) {
  switch (type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'number':
      return typeof value === 'number';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    default:
      throw new Error(`unknown type ${type}`);
  }
}

function equal(a, b) {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => equal(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => hasKey(b, k) && equal(a[k], b[k]));
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') return a === b;
  return a === b;
}

function pyValueRepr(value) {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string' || typeof value === 'number') return pyRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyValueRepr).join(', ')}]`;
  return `{${Object.keys(value)
    .map((k) => `${pyRepr(k)}: ${pyValueRepr(value[k])}`)
    .join(', ')}}`;
}

function lookup(ref, baseId) {
  const [uri, fragment = ''] = ref.split('#');
  const id = uri || baseId;
  const root = BY_ID.get(id);
  if (!root) throw new Error(`unresolvable reference ${ref}`);
  let node = root;
  for (const token of fragment.split('/').slice(1)) {
    node = node[token.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return { schema: node, baseId: id };
}

const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$defs',
  '$comment',
  'title',
  'description',
  'markdownDescription',
  'defaultSnippets',
  'default',
  'examples',
]);

/** Every error of `instance` under `schema`, in the order Draft 2020-12 evaluation finds them. */
function descend(instance, schema, baseId, path, inPropertyNames = false) {
  if (schema === true) return [];
  if (schema === false) {
    return [
      new SchemaError({
        message: `False schema does not allow ${pyValueRepr(instance)}`,
        validator: null,
        validatorValue: null,
        instance,
        schema,
        path,
        inPropertyNames,
      }),
    ];
  }
  const errors = [];
  for (const [keyword, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword)) continue;
    const keywordErrors = KEYWORDS[keyword];
    if (!keywordErrors) continue;
    for (const error of keywordErrors(instance, value, schema, baseId, path, inPropertyNames)) {
      error.inPropertyNames ||= inPropertyNames || keyword === 'propertyNames';
      errors.push(error.fill(keyword, value, instance, schema));
    }
  }
  return errors;
}

function isValid(instance, schema, baseId) {
  return descend(instance, schema, baseId, []).length === 0;
}

function plain(message, path) {
  return new SchemaError({ message, path });
}

function additionalKeys(instance, schema) {
  const properties = schema.properties || {};
  const patterns = Object.keys(schema.patternProperties || {}).join('|');
  return Object.keys(instance).filter(
    (key) => !hasKey(properties, key) && !(patterns && schemaRegExp(patterns).test(key)),
  );
}

function extrasMessage(extras) {
  return `${extras.map(pyRepr).join(', ')} ${extras.length === 1 ? 'was' : 'were'}`;
}

function evaluatedKeys(instance, schema, baseId) {
  if (typeof schema === 'boolean') return [];
  const keys = [];
  if (schema.$ref !== undefined) {
    const target = lookup(schema.$ref, baseId);
    keys.push(...evaluatedKeys(instance, target.schema, target.baseId));
  }
  if (isObject(schema.properties)) {
    keys.push(...Object.keys(schema.properties).filter((k) => hasKey(instance, k)));
  }
  for (const keyword of ['additionalProperties', 'unevaluatedProperties']) {
    if (schema[keyword] === undefined) continue;
    keys.push(...Object.keys(instance).filter((k) => isValid(instance[k], schema[keyword], baseId)));
  }
  if (schema.patternProperties) {
    for (const key of Object.keys(instance)) {
      for (const pattern of Object.keys(schema.patternProperties)) {
        if (schemaRegExp(pattern).test(key)) keys.push(key);
      }
    }
  }
  for (const keyword of ['allOf', 'oneOf', 'anyOf']) {
    for (const sub of schema[keyword] || []) {
      if (isValid(instance, sub, baseId)) keys.push(...evaluatedKeys(instance, sub, baseId));
    }
  }
  if (schema.if !== undefined) {
    if (isValid(instance, schema.if, baseId)) {
      keys.push(...evaluatedKeys(instance, schema.if, baseId));
      if (schema.then !== undefined) keys.push(...evaluatedKeys(instance, schema.then, baseId));
    } else if (schema.else !== undefined) {
      keys.push(...evaluatedKeys(instance, schema.else, baseId));
    }
  }
  return keys;
}

function branches(instance, subschemas, baseId, path, stopAtValid, flag) {
  const all = [];
  for (const [index, sub] of subschemas.entries()) {
    const errors = descend(instance, sub, baseId, path, flag);
    if (!errors.length) {
      if (stopAtValid) return null;
      continue;
    }
    for (const error of errors) {
      error.branch = index;
      error.relativePath = error.path.slice(path.length);
    }
    all.push(...errors);
  }
  return all;
}

function numberRepr(value) {
  return pyRepr(value);
}

const KEYWORDS = {
  $ref(instance, ref, schema, baseId, path, flag) {
    const target = lookup(ref, baseId);
    return descend(instance, target.schema, target.baseId, path, flag);
  },
  type(instance, types, schema, baseId, path) {
    const list = Array.isArray(types) ? types : [types];
    if (list.some((t) => isType(instance, t))) return [];
    return [plain(`${pyValueRepr(instance)} is not of type ${list.map(pyRepr).join(', ')}`, path)];
  },
  enum(instance, choices, schema, baseId, path) {
    if (choices.some((c) => equal(c, instance))) return [];
    return [plain(`${pyValueRepr(instance)} is not one of ${pyValueRepr(choices)}`, path)];
  },
  const(instance, value, schema, baseId, path) {
    return equal(instance, value) ? [] : [plain(`${pyValueRepr(value)} was expected`, path)];
  },
  pattern(instance, pattern, schema, baseId, path) {
    if (typeof instance !== 'string' || schemaRegExp(pattern).test(instance)) return [];
    return [plain(`${pyRepr(instance)} does not match ${pyRepr(pattern)}`, path)];
  },
  minLength(instance, limit, schema, baseId, path) {
    if (typeof instance !== 'string' || Array.from(instance).length >= limit) return [];
    return [plain(`${pyRepr(instance)} ${limit === 1 ? 'should be non-empty' : 'is too short'}`, path)];
  },
  minimum(instance, limit, schema, baseId, path) {
    if (typeof instance !== 'number' || instance >= limit) return [];
    return [plain(`${numberRepr(instance)} is less than the minimum of ${limit}`, path)];
  },
  maximum(instance, limit, schema, baseId, path) {
    if (typeof instance !== 'number' || instance <= limit) return [];
    return [plain(`${numberRepr(instance)} is greater than the maximum of ${limit}`, path)];
  },
  exclusiveMinimum(instance, limit, schema, baseId, path) {
    if (typeof instance !== 'number' || instance > limit) return [];
    return [plain(`${numberRepr(instance)} is less than or equal to the minimum of ${limit}`, path)];
  },
  exclusiveMaximum(instance, limit, schema, baseId, path) {
    if (typeof instance !== 'number' || instance < limit) return [];
    return [plain(`${numberRepr(instance)} is greater than or equal to the maximum of ${limit}`, path)];
  },
  minItems(instance, limit, schema, baseId, path) {
    if (!Array.isArray(instance) || instance.length >= limit) return [];
    return [plain(`${pyValueRepr(instance)} ${limit === 1 ? 'should be non-empty' : 'is too short'}`, path)];
  },
  maxItems(instance, limit, schema, baseId, path) {
    if (!Array.isArray(instance) || instance.length <= limit) return [];
    return [plain(`${pyValueRepr(instance)} ${limit === 0 ? 'is expected to be empty' : 'is too long'}`, path)];
  },
  maxProperties(instance, limit, schema, baseId, path) {
    if (!isObject(instance) || Object.keys(instance).length <= limit) return [];
    const words = limit === 0 ? 'is expected to be empty' : 'has too many properties';
    return [plain(`${pyValueRepr(instance)} ${words}`, path)];
  },
  required(instance, names, schema, baseId, path) {
    if (!isObject(instance)) return [];
    return names
      .filter((name) => !hasKey(instance, name))
      .map((name) => Object.assign(plain(`${pyRepr(name)} is a required property`, path), { missing: name }));
  },
  properties(instance, properties, schema, baseId, path, flag) {
    if (!isObject(instance)) return [];
    const errors = [];
    for (const [name, sub] of Object.entries(properties)) {
      if (hasKey(instance, name)) errors.push(...descend(instance[name], sub, baseId, [...path, name], flag));
    }
    return errors;
  },
  patternProperties(instance, patterns, schema, baseId, path, flag) {
    if (!isObject(instance)) return [];
    const errors = [];
    for (const [pattern, sub] of Object.entries(patterns)) {
      for (const key of Object.keys(instance)) {
        if (schemaRegExp(pattern).test(key)) errors.push(...descend(instance[key], sub, baseId, [...path, key], flag));
      }
    }
    return errors;
  },
  propertyNames(instance, sub, schema, baseId, path) {
    if (!isObject(instance)) return [];
    return Object.keys(instance).flatMap((key) => descend(key, sub, baseId, path, true));
  },
  additionalProperties(instance, sub, schema, baseId, path, flag) {
    if (!isObject(instance)) return [];
    const extras = additionalKeys(instance, schema);
    if (isObject(sub)) return extras.flatMap((key) => descend(instance[key], sub, baseId, [...path, key], flag));
    if (sub === false && extras.length) {
      const sorted = [...extras].sort();
      if (schema.patternProperties) {
        const patterns = Object.keys(schema.patternProperties).sort().map(pyRepr).join(', ');
        const verb = extras.length === 1 ? 'does' : 'do';
        return [plain(`${sorted.map(pyRepr).join(', ')} ${verb} not match any of the regexes: ${patterns}`, path)];
      }
      return [plain(`Additional properties are not allowed (${extrasMessage(sorted)} unexpected)`, path)];
    }
    return [];
  },
  unevaluatedProperties(instance, sub, schema, baseId, path) {
    if (!isObject(instance)) return [];
    const evaluated = new Set(evaluatedKeys(instance, schema, baseId));
    const unevaluated = Object.keys(instance).filter(
      (key) => !evaluated.has(key) && !isValid(instance[key], sub, baseId),
    );
    if (!unevaluated.length) return [];
    if (sub === false) {
      return [plain(`Unevaluated properties are not allowed (${extrasMessage(unevaluated.sort())} unexpected)`, path)];
    }
    return [
      plain(
        `Unevaluated properties are not valid under the given schema (${extrasMessage(unevaluated.sort())} unevaluated and invalid)`,
        path,
      ),
    ];
  },
  items(instance, sub, schema, baseId, path, flag) {
    if (!Array.isArray(instance)) return [];
    const prefix = (schema.prefixItems || []).length;
    const extra = instance.length - prefix;
    if (extra <= 0) return [];
    if (sub === false) {
      const rest = extra !== 1 ? instance.slice(prefix) : instance[prefix];
      const noun = prefix !== 1 ? 'items' : 'item';
      return [plain(`Expected at most ${prefix} ${noun} but found ${extra} extra: ${pyValueRepr(rest)}`, path)];
    }
    const errors = [];
    for (let index = prefix; index < instance.length; index++) {
      errors.push(...descend(instance[index], sub, baseId, [...path, index], flag));
    }
    return errors;
  },
  prefixItems(instance, subs, schema, baseId, path, flag) {
    if (!Array.isArray(instance)) return [];
    const errors = [];
    subs.forEach((sub, index) => {
      if (index < instance.length) errors.push(...descend(instance[index], sub, baseId, [...path, index], flag));
    });
    return errors;
  },
  allOf(instance, subs, schema, baseId, path, flag) {
    return subs.flatMap((sub) => descend(instance, sub, baseId, path, flag));
  },
  anyOf(instance, subs, schema, baseId, path, flag) {
    const context = branches(instance, subs, baseId, path, true, flag);
    if (context === null) return [];
    return [
      new SchemaError({
        message: `${pyValueRepr(instance)} is not valid under any of the given schemas`,
        path,
        context,
      }),
    ];
  },
  oneOf(instance, subs, schema, baseId, path, flag) {
    const valid = subs.filter((sub) => isValid(instance, sub, baseId));
    if (valid.length === 1) return [];
    if (valid.length === 0) {
      return [
        new SchemaError({
          message: `${pyValueRepr(instance)} is not valid under any of the given schemas`,
          path,
          context: branches(instance, subs, baseId, path, false, flag),
        }),
      ];
    }
    return [plain(`${pyValueRepr(instance)} is valid under each of ${valid.map(pyValueRepr).join(', ')}`, path)];
  },
  not(instance, sub, schema, baseId, path) {
    if (!isValid(instance, sub, baseId)) return [];
    return [plain(`${pyValueRepr(instance)} should not be valid under ${pyValueRepr(sub)}`, path)];
  },
  if(instance, sub, schema, baseId, path, flag) {
    if (isValid(instance, sub, baseId)) {
      return schema.then !== undefined ? descend(instance, schema.then, baseId, path, flag) : [];
    }
    return schema.else !== undefined ? descend(instance, schema.else, baseId, path, flag) : [];
  },
};

// ------------------------------------------------------------------ explaining errors
/** Replace an anyOf/oneOf failure by the errors of the branch meant for this value's type. */
function* leafErrors(error) {
  if (!['anyOf', 'oneOf'].includes(error.validator) || !error.context.length) {
    yield error;
    return;
  }
  const byBranch = new Map();
  for (const sub of error.context) {
    if (!byBranch.has(sub.branch)) byBranch.set(sub.branch, []);
    byBranch.get(sub.branch).push(sub);
  }
  const fitting = [...byBranch.values()].filter(
    (subs) => !subs.some((s) => ['type', 'const', 'enum'].includes(s.validator) && s.relativePath.length === 0),
  );
  if (fitting.length === 1) {
    for (const sub of fitting[0]) yield* leafErrors(sub);
    return;
  }
  yield error;
}

function pythonEqual(a, b) {
  const number = (v) => (typeof v === 'boolean' ? Number(v) : v);
  if (Array.isArray(a) || Array.isArray(b) || isObject(a) || isObject(b)) return equal(a, b);
  return number(a) === number(b);
}

/** Keys a mapping may hold at this place (for an algorithm: those of its method). */
function allowedKeys(schema, instance) {
  const keys = Object.keys(schema.properties || {});
  const ref = typeof schema.$ref === 'string' ? schema.$ref : '';
  if (ref.startsWith('#/$defs/')) {
    const target = SCHEMAS.recipe.$defs[ref.slice(ref.lastIndexOf('/') + 1)] || {};
    keys.push(...allowedKeys(target, instance));
  }
  const method = isObject(instance) && hasKey(instance, 'method') ? instance.method : null;
  for (const branch of schema.allOf || []) {
    const condition = branch.if || {};
    const methodCondition = condition.properties?.method || {};
    const required = condition.required || [];
    if (isObject(instance) && !required.every((key) => hasKey(instance, key))) continue;
    if (hasKey(methodCondition, 'const') && !pythonEqual(methodCondition.const, method)) continue;
    if (condition.not !== undefined && isObject(instance)) {
      const notRequired = condition.not.required || [null];
      if (notRequired.every((key) => key !== null && hasKey(instance, key))) continue;
    }
    keys.push(...Object.keys(branch.then?.properties || {}));
  }
  return [...new Set(keys)];
}

export function suggest(word, choices) {
  const match = closestMatch(word, choices);
  return match === null ? null : `did you mean ${show(match)}?`;
}

const YAML11_FLOAT = /^[-+]?[0-9]+[eE][-+]?[0-9]+(?=\n?$)/;

const BOUND_WORDS = {
  minimum: 'at least',
  exclusiveMinimum: 'greater than',
  maximum: 'at most',
  exclusiveMaximum: 'less than',
};

/** [message, hint, extra pointer tokens] for one leaf error. */
function explain(error) {
  const { validator, instance: value } = error;
  if (error.inPropertyNames && typeof value === 'string') return [`invalid key ${show(value)}`, null, [value]];
  if (validator === 'additionalProperties' || validator === 'unevaluatedProperties') {
    const allowed = allowedKeys(error.schema, value);
    const extra = isObject(value) ? writtenKeys(value).filter((k) => !allowed.includes(k)) : [];
    // The keys are known: their own errors say what is wrong.
    if (!extra.length) return ['', null, []];
    const key = extra[0];
    let hint = suggest(key, allowed);
    if (hint === null && allowed.length) {
      hint = `allowed keys: ${allowed
        .filter((k) => k !== '$import')
        .sort()
        .join(', ')}`;
    }
    return [`unknown key ${show(key)}`, hint, [key]];
  }
  if (validator === 'required') return [`missing required key ${show(error.missing)}`, null, []];
  if (validator === 'enum') {
    const choices = error.validatorValue.filter((c) => typeof c === 'string');
    const hint = typeof value === 'string' ? suggest(value, choices) : null;
    return [`${show(value)} is not one of ${error.validatorValue.map(show).join(', ')}`, hint, []];
  }
  if (validator === 'const') return [`${show(value)} must be ${show(error.validatorValue)}`, null, []];
  if (validator === 'type') {
    const wanted = Array.isArray(error.validatorValue) ? error.validatorValue : [error.validatorValue];
    const names = wanted
      .map((w) => (w === 'object' ? 'a mapping' : w === 'array' ? 'a list' : w))
      .join(' or ');
    const shown = value === null || typeof value === 'object' ? '' : ` ${show(value)}`;
    let hint = null;
    if (wanted.includes('number') && typeof value === 'string' && YAML11_FLOAT.test(value)) {
      const [mantissa, exponent] = value.split(/[eE](.*)/s);
      hint = `YAML 1.1 reads ${value} as a string; write it with a dot, e.g. ${mantissa}.0e${exponent}`;
    }
    return [`expected ${names}, got ${describeType(value)}${shown}`, hint, []];
  }
  if (validator === 'pattern' && error.validatorValue.startsWith('^[Ee]')) {
    return [
      `${show(value)} is not a number format written ExMy`,
      'write e.g. e4m3, e5m2, e2m1 (E = exponent bits, M = mantissa bits)',
      [],
    ];
  }
  if (validator === 'pattern') {
    return [`${show(value)} does not match the pattern ${show(error.validatorValue)}`, null, []];
  }
  if (validator === 'not' && isObject(error.validatorValue)) {
    return [error.validatorValue.$comment || `${show(value)} is not allowed here`, null, []];
  }
  if (hasKey(BOUND_WORDS, validator)) {
    return [`${show(value)} must be ${BOUND_WORDS[validator]} ${error.validatorValue}`, null, []];
  }
  if (['minItems', 'maxItems', 'items', 'prefixItems'].includes(validator) && Array.isArray(value)) {
    return [`${show(value)} must be a pair [E, M] of integers`, null, []];
  }
  if (validator === 'minLength') return ['must not be empty', null, []];
  if (validator === 'anyOf' || validator === 'oneOf') {
    return [`${show(value)} is not a valid value here`, null, []];
  }
  return [error.message, null, []];
}

function pointerOf(path) {
  return path.map((token) => `/${escapePointerToken(token)}`).join('');
}

/** The error tree of `instance` for a schema (or one of its `$defs`). */
function schemaErrors(instance, schema, definition) {
  const root = SCHEMAS[schema];
  const target = definition === null ? root : { $ref: `${root.$id}#/$defs/${definition}` };
  return descend(instance, target, root.$id, []);
}

/**
 * All schema violations of `instance`, sorted by position.
 * @param {unknown} instance
 * @param {import('./yamlio.js').YamlDocument|null} doc gives lines and columns when known
 * @param {string|null} file
 * @param {{schema?: 'recipe'|'flat', definition?: string|null, basePointer?: string, chain?: string[]}} [options]
 * @returns {import('./errors.js').Diagnostic[]}
 */
export function schemaDiagnostics(instance, doc, file, options = {}) {
  const { schema = 'recipe', definition = null, basePointer = '', chain = [] } = options;
  const validate = ajvValidator(schema, definition);
  if (validate(instance)) return [];
  const diagnostics = [];
  const seen = new Set();
  for (const error of schemaErrors(instance, schema, definition)) {
    for (const leaf of leafErrors(error)) {
      const [message, explained, extra] = explain(leaf);
      if (!message) continue;
      let hint = explained;
      if (hint === null && isObject(leaf.schema) && leaf.schema.$comment !== undefined) hint = leaf.schema.$comment;
      let pointer = basePointer + pointerOf(leaf.path);
      for (const token of extra) pointer = joinPointer(pointer, token);
      const key = `${pointer}\u0000${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let line = null;
      let column = null;
      if (doc) {
        const position = doc.position(pointer, { key: extra.length > 0 });
        if (position) [line, column] = position;
      }
      diagnostics.push(SchemaValidationError.diagnostic(message, { file, line, column, pointer, chain, hint }));
    }
  }
  if (!diagnostics.length) {
    // The explanation found nothing ajv objects to: report ajv's own findings.
    for (const error of validate.errors || []) {
      const pointer = basePointer + error.instancePath;
      const position = doc ? doc.position(pointer) : null;
      diagnostics.push(
        SchemaValidationError.diagnostic(`${error.message}`, {
          file,
          line: position ? position[0] : null,
          column: position ? position[1] : null,
          pointer,
          chain,
        }),
      );
    }
  }
  return sortDiagnostics(diagnostics);
}

/** Throw a SchemaValidationError with every violation, if there is any. */
export function checkSchema(instance, doc, file, options = {}) {
  const diagnostics = schemaDiagnostics(instance, doc, file, options);
  if (diagnostics.length) throw new SchemaValidationError(diagnostics);
}

/** Whether the explanation engine alone finds `instance` valid (used to cross-check with ajv). */
export function explainerFindsValid(instance, schema = 'recipe', definition = null) {
  return schemaErrors(instance, schema, definition).length === 0;
}

/** Whether ajv finds `instance` valid. */
export function ajvFindsValid(instance, schema = 'recipe', definition = null) {
  return ajvValidator(schema, definition)(instance);
}
