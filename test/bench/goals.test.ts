// The benchmark's goals table (bench/lib/goals.mjs): each goal is judged on
// the median over rounds of rfc6455's value over the reference's in the same
// round, and says when there is nothing to judge.

import t from 'tap'

interface Round { metrics?: Record<string, number>, generatorCpu?: number }
type ByServer = Map<string, Round[]>
interface Judged { measured: string, verdict: string }

// A path in a variable: TypeScript leaves the untyped benchmark module alone, the test types what it uses.
const GOALS_MODULE = '../../bench/lib/goals.mjs'
type JudgeGoal = (byServer: ByServer, metric: { key: string }, goal: object) => Judged

const rounds = (values: Array<number | null>, generatorCpu = 50): Round[] =>
  values.map((value) => value === null ? {} : { metrics: { rate: value }, generatorCpu })

t.test('a goal is met or missed on the median of the per-round ratios', async (t) => {
  const { judgeGoal } = await import(GOALS_MODULE) as { judgeGoal: JudgeGoal }
  const metric = { key: 'rate' }
  // Per-round ratios 1.5, 1.0, 2.0: median 1.5.
  const byServer: ByServer = new Map([
    ['rfc6455', rounds([300, 100, 400])],
    ['ws', rounds([200, 100, 200])]
  ])
  t.same(judgeGoal(byServer, metric, { reference: 'ws', atLeast: 1.2 }), { measured: '×1.50 [1.00–2.00, 3 rounds]', verdict: 'met' })
  t.same(judgeGoal(byServer, metric, { reference: 'ws', atLeast: 1.6 }).verdict, 'missed')
  t.same(judgeGoal(byServer, metric, { reference: 'ws', atMost: 1.5 }).verdict, 'met', 'atMost includes the bound')
  t.same(judgeGoal(byServer, metric, { reference: 'ws', atMost: 1.4 }).verdict, 'missed')

  // Per-round ratios, not ratios of medians: 1000/100 = 10, 1/10 = 0.1, 1/1 = 1 → median 1, where medians alone give 1/10.
  const pairs: ByServer = new Map([['rfc6455', rounds([1000, 1, 1])], ['ws', rounds([100, 10, 1])]])
  t.equal(judgeGoal(pairs, metric, { reference: 'ws', atLeast: 1 }).measured, '×1.00 [0.10–10.00, 3 rounds]')
})

t.test('nothing to judge is said as such, and a saturated generator is marked', async (t) => {
  const { judgeGoal } = await import(GOALS_MODULE) as { judgeGoal: JudgeGoal }
  const metric = { key: 'rate' }
  const goal = { reference: 'uws', atLeast: 0.8 }
  t.equal(judgeGoal(new Map([['rfc6455', rounds([1])]]), metric, goal).verdict, 'no reference', 'reference not in the run')
  t.equal(judgeGoal(new Map([['rfc6455', rounds([1])], ['uws', rounds([null])]]), metric, goal).verdict, 'no reference', 'reference failed')
  t.equal(judgeGoal(new Map([['rfc6455', rounds([null])], ['uws', rounds([1])]]), metric, goal).verdict, 'no result')
  t.match(judgeGoal(new Map([['rfc6455', rounds([1])], ['uws', rounds([0])]]), metric, goal).verdict, /non-zero reference/)
  const saturated = judgeGoal(new Map([['rfc6455', rounds([90])], ['uws', rounds([100], 95)]]), metric, goal)
  t.same(saturated, { measured: '×0.90 ⚠', verdict: 'met' })
})
