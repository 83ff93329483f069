// Types of bench/lib/sections.mjs for the tests (test/bench/).
export function sections(text: string): Map<string, string>;
export function keepSections(file: string, text: string): string;
export function writeSection(file: string, name: string, markdown: string): void;
export function keepAnalysis(oldText: string | undefined, newText: string): string;
export function analysisBlock(id: string): string[];
