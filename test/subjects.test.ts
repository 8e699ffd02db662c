import { describe, expect, it } from "vitest"
import { allocateSubjects, subjectDemand } from "../src/skyrl/subjects.js"

const plan = (domains: ReadonlyArray<string>) => domains.map((domain, index) => ({ index, domain }))
const TEN = ["Lisbon", "Oslo", "Quito", "Hanoi", "Accra", "Lima", "Perth", "Riga", "Dakar", "Cusco"]

describe("subject allocation", () => {
  it("hands out a shared pool without repetition across domains", () => {
    const p = plan(["x", "y", "z", "x", "y", "z", "x", "y"])
    const a = allocateSubjects(7, p, { shared: TEN })
    const first = p.map((s) => a.subjectFor(s.index, 1))
    expect(new Set(first).size).toBe(8)
    expect(first.every((s) => s !== undefined && TEN.includes(s))).toBe(true)
    expect(a.pools).toEqual([{ pool: "*", subjects: 10, samples: 8, spares: 2, reuse: 1 }])
  })

  it("is the same for the same seed, different for another, and independent of the plan's order", () => {
    const p = plan(["x", "y", "x", "y", "x", "y"])
    const of = (seed: number, q = p) => {
      const a = allocateSubjects(seed, q, { shared: TEN })
      return p.map((s) => a.subjectFor(s.index, 1))
    }
    expect(of(7)).toEqual(of(7))
    expect(of(8)).not.toEqual(of(7))
    expect(of(7, [...p].reverse())).toEqual(of(7))
  })

  it("uses a domain's own pool, cycling when it is smaller than the domain's samples", () => {
    const p = plan(["a", "b", "a", "b", "a", "b", "a", "b"])
    const alloc = allocateSubjects(1, p, { byDomain: { a: ["a1", "a2", "a3", "a4", "a5"], b: ["b1", "b2", "b3"] } })
    const a = p.filter((s) => s.domain === "a").map((s) => alloc.subjectFor(s.index, 1) ?? "")
    const b = p.filter((s) => s.domain === "b").map((s) => alloc.subjectFor(s.index, 1) ?? "")
    expect(new Set(a).size).toBe(4)
    expect(a.every((s) => s.startsWith("a"))).toBe(true)
    expect(new Set(b).size).toBe(3)
    expect(b[3]).toBe(b[0])
    expect(alloc.pools).toEqual([
      { pool: "a", subjects: 5, samples: 4, spares: 1, reuse: 1 },
      { pool: "b", subjects: 3, samples: 4, spares: 0, reuse: 2 }
    ])
  })

  it("falls back to the shared pool, and gives nothing when there is no pool", () => {
    const p = plan(["own", "other"])
    const alloc = allocateSubjects(3, p, { byDomain: { own: ["o1"] }, shared: ["s1"] })
    expect([alloc.subjectFor(0, 1), alloc.subjectFor(1, 1)]).toEqual(["o1", "s1"])
    expect(allocateSubjects(3, p, {}).subjectFor(0, 1)).toBeUndefined()
    expect(allocateSubjects(3, p, { shared: [" ", ""] }).subjectFor(0, 1)).toBeUndefined()
    expect(alloc.subjectFor(99, 1)).toBeUndefined()
  })

  it("gives later attempts spares that no first attempt got, distinct while they last", () => {
    const p = plan(["x", "x", "x"])
    const alloc = allocateSubjects(5, p, { shared: TEN })
    const first = p.map((s) => alloc.subjectFor(s.index, 1))
    const second = p.map((s) => alloc.subjectFor(s.index, 2))
    const third = p.map((s) => alloc.subjectFor(s.index, 3))
    const all = [...first, ...second, ...third]
    expect(new Set(all).size).toBe(9)
  })

  it("drops blank and repeated entries (ignoring case)", () => {
    const alloc = allocateSubjects(1, plan(["x", "x", "x"]), { shared: ["Oslo", " oslo ", "", "Riga"] })
    expect(alloc.pools[0].subjects).toBe(2)
  })

  it("says how many subjects each domain needs", () => {
    expect(subjectDemand(plan(["a", "b", "a", "c", "a"]))).toEqual({ a: 3, b: 1, c: 1 })
  })
})
