/**
 * Topological sorting of node lists (raw ONNX nodes in canon.ts, canonical nodes in simplify.ts):
 * Kahn's algorithm with index maps, O((nodes + edges) log nodes) whatever the given order, where
 * repeated passes over the pending nodes were quadratic on a reversed list.
 */

/** A binary min-heap of indices. */
class MinHeap {
  private readonly a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(v: number): void {
    const a = this.a;
    let i = a.push(v) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent] <= v) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = v;
  }

  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= a.length) break;
        if (child + 1 < a.length && a[child + 1] < a[child]) ++child;
        if (a[child] >= last) break;
        a[i] = a[child];
        i = child;
      }
      a[i] = last;
    }
    return top;
  }
}

/**
 * Sorts `items` so that every item comes after the producers of its inputs. Stable: of the items
 * ready, the one first in the given order goes next, so an order that is already valid is kept.
 * @param available names that need no producer (graph inputs, initializers)
 * @returns the sorted items, and those that never become ready (on a cycle, after one, or reading
 *   a name nothing produces), in the given order
 */
export function topoSort<T>(
  items: readonly T[],
  inputsOf: (item: T) => readonly string[],
  outputsOf: (item: T) => readonly string[],
  available: (name: string) => boolean,
): { sorted: T[]; stuck: T[] } {
  const producer = new Map<string, number>();
  items.forEach((item, i) => {
    for (const o of outputsOf(item)) if (o && !available(o) && !producer.has(o)) producer.set(o, i);
  });
  const readers = new Map<string, number[]>();
  const waiting = new Int32Array(items.length);
  const ready = new MinHeap();
  items.forEach((item, i) => {
    for (const name of inputsOf(item)) {
      if (!name || available(name)) continue;
      ++waiting[i]; // a name nothing produces is never released
      if (!producer.has(name)) continue;
      const list = readers.get(name);
      if (list) list.push(i);
      else readers.set(name, [i]);
    }
    if (waiting[i] === 0) ready.push(i);
  });
  const sorted: T[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    sorted.push(items[i]);
    for (const o of outputsOf(items[i])) {
      if (producer.get(o) !== i) continue;
      for (const r of readers.get(o) ?? []) if (--waiting[r] === 0) ready.push(r);
    }
  }
  const stuck = sorted.length === items.length ? [] : items.filter((_, i) => waiting[i] > 0);
  return { sorted, stuck };
}
