import type { Channel } from '../db/schema.js'

// How a customer's address is written in our tables (the contact registry, contacts.phone,
// contact_addresses, messages' from/to): a phone number in E.164 (`+31612345678`), or a Messenger
// user's page-scoped id behind the channel's name (`messenger:6011234567890123`). The prefix keeps
// the two apart in the one registry (a phone always starts with `+`), and makes any attempt to
// treat a Messenger id as a phone number fail visibly instead of texting a stranger. Adapters
// strip it at the provider's edge.

const MESSENGER = 'messenger:'

/** A page-scoped id as Facebook and MessageBird give it: digits only. */
export const PSID = /^\d{5,32}$/

export function messengerAddress (psid: string): string {
  return MESSENGER + psid
}

export function isMessengerAddress (address: string): boolean {
  return address.startsWith(MESSENGER)
}

/** The id the provider knows: the page-scoped id for Messenger, the number for the rest. */
export function providerRecipient (address: string): string {
  return isMessengerAddress(address) ? address.slice(MESSENGER.length) : address
}

/** The channel a contact's own (first) address is reached on. */
export function primaryChannel (address: string): Channel {
  return isMessengerAddress(address) ? 'messenger' : 'sms'
}

/** How people see an address: the number as stored, or "Messenger 6011234567890123". */
export function addressLabel (address: string): string {
  return isMessengerAddress(address) ? `Messenger ${providerRecipient(address)}` : address
}
