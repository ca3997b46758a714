/** Host facts (pure): the schema agents' facts are checked against, their caps, sanitising and digest. */
export {
  FACTS_LIMITS,
  HostDiskSchema,
  HostFactsSchema,
  HostNetworkInterfaceSchema,
  factsDigest,
  sanitizeFactText,
  validateHostFacts,
  type HostDisk,
  type HostFacts,
  type HostNetworkInterface,
} from './facts.js';
