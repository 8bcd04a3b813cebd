// Plain JSON data as parsed from recipes: the helpers every module shares.

/** Whether `value` is a mapping (a plain object, not a list or null). */
export function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function hasKey(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/** Set a key on a plain object even when it is "__proto__". */
export function setKey(object, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

// JavaScript objects list integer-like keys first; where a mapping has such keys (block sizes
// written `-1: 16`, `0: 8`), the order they were written in is kept here, so that everything
// that walks a mapping (messages naming "the first" offending key, the order imports are
// checked in) sees the keys as Python does.
export const KEY_ORDER = Symbol('qrecipe.keyOrder');

const INTEGER_LIKE = /^(0|[1-9][0-9]*)$/;

/** The keys of a mapping in the order they were written. */
export function writtenKeys(object) {
  return object[KEY_ORDER] || Object.keys(object);
}

/** Remember the written key order of `object` when JavaScript would not keep it. */
export function keepKeyOrder(object, order) {
  if (order.some((key) => INTEGER_LIKE.test(key))) {
    Object.defineProperty(object, KEY_ORDER, { value: order, enumerable: false, configurable: true });
  }
  return object;
}

/** A deep copy of plain JSON data, written key order included. */
export function deepCopy(value) {
  if (Array.isArray(value)) return value.map(deepCopy);
  if (isObject(value)) {
    const copy = {};
    const order = writtenKeys(value);
    for (const key of order) setKey(copy, key, deepCopy(value[key]));
    return keepKeyOrder(copy, order);
  }
  return value;
}
