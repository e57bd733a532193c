/** The group's gate, and every patch the group may ask after its first await (see workflows/patches-first.ts). */
import { PIN_PREVIOUS_PATCH } from './cells.ts';
import { GROUP_NOTIFICATIONS_PATCH } from './notify.ts';

export const GROUP_PATCHES_FIRST = 'glidepath-group-patches-first';
export const GROUP_LATER_PATCHES = [GROUP_NOTIFICATIONS_PATCH, PIN_PREVIOUS_PATCH] as const;
