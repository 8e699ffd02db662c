/**
 * Union-find over ids 0..n-1 in one array of 4 bytes an id: 0 for an id without links, parent + 1 for a
 * linked id, -size for a cluster's root. A cluster's root is its smallest id (a link joins the later root
 * to the earlier), which is the member the duplicate reports keep.
 */
export class UnionFind {
  private readonly parent: Int32Array
  constructor(n: number) {
    this.parent = new Int32Array(n)
  }

  get length(): number {
    return this.parent.length
  }

  /** Whether `x` is in a link (a cluster of two or more). */
  linked(x: number): boolean {
    return this.parent[x] !== 0
  }

  /** The size of the cluster `x` is the root of; 0 when `x` is not a root. */
  rootSize(x: number): number {
    const p = this.parent[x]!
    return p < 0 ? -p : 0
  }

  find(x: number): number {
    const p = this.parent
    let root = x
    while (p[root]! > 0) root = p[root]! - 1
    for (let y = x; y !== root;) {
      const up = p[y]! - 1
      p[y] = root + 1
      y = up
    }
    return root
  }

  union(a: number, b: number): void {
    const p = this.parent
    if (p[a] === 0) p[a] = -1
    if (p[b] === 0) p[b] = -1
    const ra = this.find(a)
    const rb = this.find(b)
    if (ra === rb) return
    const [lo, hi] = ra < rb ? [ra, rb] : [rb, ra]
    p[lo] = p[lo]! + p[hi]!
    p[hi] = lo + 1
  }
}
