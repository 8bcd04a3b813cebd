// "Did you mean" suggestions that pick the same word as the Python implementation: the
// similarity ratio of longest-matching-blocks (Ratcliff/Obershelp, as in Python's difflib),
// the same cutoff, and the same tie-breaking.

function longestMatch(a, b, bIndex, alo, ahi, blo, bhi) {
  let bestI = alo;
  let bestJ = blo;
  let bestSize = 0;
  let lengths = new Map();
  for (let i = alo; i < ahi; i++) {
    const next = new Map();
    for (const j of bIndex.get(a[i]) || []) {
      if (j < blo) continue;
      if (j >= bhi) break;
      const k = (lengths.get(j - 1) || 0) + 1;
      next.set(j, k);
      if (k > bestSize) {
        bestI = i - k + 1;
        bestJ = j - k + 1;
        bestSize = k;
      }
    }
    lengths = next;
  }
  return [bestI, bestJ, bestSize];
}

/** Similarity of two strings in [0, 1]: twice the matched characters over the total. */
export function similarity(first, second) {
  const a = Array.from(first);
  const b = Array.from(second);
  if (a.length + b.length === 0) return 1;
  const bIndex = new Map();
  b.forEach((ch, j) => {
    if (!bIndex.has(ch)) bIndex.set(ch, []);
    bIndex.get(ch).push(j);
  });
  let matched = 0;
  const queue = [[0, a.length, 0, b.length]];
  while (queue.length) {
    const [alo, ahi, blo, bhi] = queue.pop();
    const [i, j, k] = longestMatch(a, b, bIndex, alo, ahi, blo, bhi);
    if (k) {
      matched += k;
      if (alo < i && blo < j) queue.push([alo, i, blo, j]);
      if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
    }
  }
  return (2 * matched) / (a.length + b.length);
}

/** The closest choice to `word` with similarity at least `cutoff`, or null. */
export function closestMatch(word, choices, cutoff = 0.6) {
  let best = null;
  let bestScore = -1;
  for (const choice of choices) {
    const score = similarity(choice, word);
    if (score < cutoff) continue;
    // Equal scores: the greater string wins, as with Python's heapq.nlargest on (score, word).
    if (score > bestScore || (score === bestScore && choice > best)) {
      best = choice;
      bestScore = score;
    }
  }
  return best;
}
