// Test-time IAM evaluation with @cloud-copilot/iam-simulate (AGPL-3.0-or-later; a devDependency, run only from
// tests in this separate Node process, never from product code).
//
// stdin: {"simulations": [{"id", "principal", "action", "resource", "accountId", "context",
//                          "identityPolicies": [{name, policy}], "resourcePolicy": policy | null}]}
// stdout: {"results": [{"id", "decision": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "Error",
//                       "explain": [...decisive statements or errors...], "ignoredContextKeys": [...]}]}
// Context keys iam-data does not know for the action are dropped by the simulator and reported in
// ignoredContextKeys: callers assert there are none. `"unverifiedContext": true` runs the simulator's
// unvalidated engine instead, only where iam-data lacks documented keys (GitHub's OIDC `sub` and `aud`).
'use strict'
const iamPolicy = require('@cloud-copilot/iam-policy')
// iam-simulate 0.1.173's unvalidated engine loads the resource policy without a name and then reads it
// (TypeError "reading 'name'"): give every policy loaded without one a name.
const loadPolicy = iamPolicy.loadPolicy
Object.defineProperty(iamPolicy, 'loadPolicy', {
  configurable: true, enumerable: true,
  get: () => (policy, metadata) => loadPolicy(policy, metadata || { name: 'ResourcePolicy' }),
})
const { runSimulation, runUnsafeSimulation } = require('@cloud-copilot/iam-simulate')

function decisive(analysis) {
  if (!analysis) return []
  const out = []
  for (const [where, part] of Object.entries(analysis)) {
    if (!part || typeof part !== 'object') continue
    for (const kind of ['denyStatements', 'allowStatements']) {
      for (const s of part[kind] || []) {
        const e = s.explain || s
        out.push(`${where}.${kind}: ${e.identifier ?? ''} ${e.policyIdentifier ?? ''}`.trim())
      }
    }
  }
  return out
}

async function main() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const results = []
  for (const sim of input.simulations) {
    const simulation = {
      identityPolicies: sim.identityPolicies || [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: sim.resourcePolicy || undefined,
      request: {
        principal: sim.principal,
        action: sim.action,
        resource: { resource: sim.resource, accountId: sim.accountId },
        contextVariables: sim.context || {},
      },
    }
    try {
      if (sim.unverifiedContext) {
        const result = runUnsafeSimulation(simulation, {})
        results.push({ id: sim.id, decision: result, explain: [], ignoredContextKeys: [] })
        continue
      }
      const response = await runSimulation(simulation, {})
      if (response.resultType === 'error') {
        results.push({ id: sim.id, decision: 'Error', explain: [JSON.stringify(response.errors)] })
      } else {
        const result = response.resultType === 'single' ? response.result : response.results[0]
        results.push({ id: sim.id, decision: response.overallResult,
                       explain: decisive(result && result.analysis),
                       ignoredContextKeys: (result && result.ignoredContextKeys) || [] })
      }
    } catch (err) {
      results.push({ id: sim.id, decision: 'Error', explain: [String(err && err.stack || err)] })
    }
  }
  process.stdout.write(JSON.stringify({ results }))
}

main().catch((err) => { console.error(err); process.exit(2) })
