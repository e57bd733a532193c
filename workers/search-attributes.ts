/** Registers Glidepath's search attributes on a Temporal namespace (idempotent). */
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/messages.ts';
import { GROUP_ATTRIBUTE } from '../workflows/group/messages.ts';
import { COMMIT_ATTRIBUTE } from '../workflows/git-source/messages.ts';

/** Every search attribute Glidepath's workflows set (all Keyword); the server scripts and docker-compose.yml register the same. */
export const GLIDEPATH_SEARCH_ATTRIBUTES = [...SEARCH_ATTRIBUTES, GROUP_ATTRIBUTE, COMMIT_ATTRIBUTE] as const;

const KEYWORD = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const ALREADY_EXISTS = 6;

/**
 * Adds the attributes that are missing. Temporal's Java test server implements AddSearchAttributes
 * but not ListSearchAttributes, so "already exists" is read from the add's answer.
 */
export async function registerSearchAttributes(connection: Pick<Connection, 'operatorService'>, namespace: string): Promise<void> {
  for (const key of GLIDEPATH_SEARCH_ATTRIBUTES) {
    try {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { [key.name]: KEYWORD } });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === ALREADY_EXISTS || /already exists/i.test((err as Error).message)) continue;
      throw err;
    }
  }
}
