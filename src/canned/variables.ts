// The variables a canned reply may hold, written {{customer.name}}. Checked when a reply is saved
// (an unknown one is refused, naming it and the known ones), filled when a reply is inserted in
// a ticket's composer. This is the only place that knows the syntax.

export const VARIABLES = ['customer.name', 'ticket.ref', 'agent.name'] as const
export type Variable = typeof VARIABLES[number]
export type VariableValues = Record<Variable, string>

/** What each variable becomes, for the manage page. */
export const VARIABLE_HELP: Record<Variable, string> = {
  'customer.name': "the customer's name, or their number when no name is known",
  'ticket.ref': 'the ticket number, as in the confirmation text (12)',
  'agent.name': 'the name of the agent who inserts the reply'
}

/** `{{ name }}`, spaces inside the braces allowed. */
const TOKEN = /\{\{\s*([^{}]*?)\s*\}\}/g

export const knownVariablesList = (): string => VARIABLES.map((v) => `{{${v}}}`).join(', ')

export type VariableProblem =
  | { kind: 'unknown', variables: string[] }
  | { kind: 'unclosed' }

/** What is wrong with the variables of `body`, or null when every one is known and closed. */
export function variableProblem (body: string): VariableProblem | null {
  const unknown = new Set<string>()
  for (const m of body.matchAll(TOKEN)) {
    if (!(VARIABLES as readonly string[]).includes(m[1])) unknown.add(m[1])
  }
  if (unknown.size > 0) return { kind: 'unknown', variables: [...unknown] }
  const rest = body.replace(TOKEN, '')
  if (rest.includes('{{') || rest.includes('}}')) return { kind: 'unclosed' }
  return null
}

/** `body` with every variable replaced by its value. Call on bodies that passed variableProblem(). */
export function fillVariables (body: string, values: VariableValues): string {
  return body.replace(TOKEN, (token, name: string) => Object.hasOwn(values, name) ? values[name as Variable] : token)
}
