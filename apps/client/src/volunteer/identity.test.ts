import { describe, expect, it } from 'vitest';
import { MAX_DISPLAY_NAME_CHARS, MAX_TEAM_CHARS } from '@meshgrad/core';
import { cleanProfile, profileProblem } from './identity.ts';

describe('the name and team a volunteer types', () => {
  it('are trimmed, and blank ones are none', () => {
    expect(cleanProfile('  Ada ', '\tLab\n')).toEqual({ name: 'Ada', team: 'Lab' });
    expect(cleanProfile('   ', '')).toEqual({});
  });

  it('are checked by the server’s own rules before the page joins', () => {
    expect(profileProblem({ name: 'Ada', team: 'Lab' })).toBeNull();
    expect(profileProblem({ name: 'a'.repeat(MAX_DISPLAY_NAME_CHARS + 1) })).toBe(
      `Display name must be at most ${MAX_DISPLAY_NAME_CHARS} characters`,
    );
    expect(profileProblem({ team: 't'.repeat(MAX_TEAM_CHARS + 1) })).toBe(
      `Team must be at most ${MAX_TEAM_CHARS} characters`,
    );
    expect(profileProblem({ name: '<b>Ada</b>' })).toBe('Display name must not contain < or >');
    expect(profileProblem({ team: 'a\u202eb' })).toBe('Team must not contain control characters');
  });
});
