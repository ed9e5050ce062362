export type { ProfileReader, DeadLetterReader } from './ports.js';
