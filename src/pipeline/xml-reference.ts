// The reference the hot-path XML writer (xml.ts) is held to: the same user tree, serialised by
// xmlbuilder2. Its own module, so that the mapping threads, which write XML with userXml, never
// load xmlbuilder2.
import { create } from 'xmlbuilder2';
import type { AlmaUser } from '../shared/alma.js';
import { userTree, type XmlElement } from './xml.js';

/** The same user written by xmlbuilder2: the reference the fast writer is held to. */
export function userXmlReference(user: AlmaUser): string {
  const build = (parent: ReturnType<typeof create>, e: XmlElement): void => {
    const node = parent.ele(e.name, Object.fromEntries(e.attributes ?? []));
    if (e.children) for (const child of e.children) build(node, child);
    else node.txt(e.text ?? '');
  };
  const doc = create();
  build(doc, userTree(user));
  const text = doc.end({ headless: true, prettyPrint: true, indent: '  ', offset: 1, newline: '\n' });
  return text + '\n';
}
