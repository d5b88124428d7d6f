// Types of build-stamp.mjs, for the TypeScript e2e harness.
export declare const STAMP: string;
export declare function writeStamp(root: string, inputs: string[], executable: string): void;
export declare function staleReason(root: string): string | null;
export declare function ensureFreshBuild(root: string): void;
