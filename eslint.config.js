import neostandard from 'neostandard'

// neostandard (the style Fastify's own demo uses) with its TypeScript rules.
export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**'] }),
  {
    rules: {
      // `void promise` marks a promise deliberately not awaited (a background flush, a timer's work).
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
