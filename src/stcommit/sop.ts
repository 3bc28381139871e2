/** PS3.4 J.3.1 / PS3.6 Annex A: the Storage Commitment Push Model SOP Class and its well-known instance. */
export const STORAGE_COMMITMENT_SOP_CLASS = '1.2.840.10008.1.20.1';
export const STORAGE_COMMITMENT_SOP_INSTANCE = '1.2.840.10008.1.20.1.1';

/** PS3.4 J.3.2.1: Action Type ID 1, Request Storage Commitment. */
export const REQUEST_STORAGE_COMMITMENT = 1;

/** PS3.4 J.3.3.1: Event Type ID 1, all committed; 2, some failed. */
export const EventType = { AllCommitted: 1, Failures: 2 } as const;
