// kernel-mm: the memory manager actor `mm` (mm/ in Linux). Built by the kernel-mm issue.
export const PACKAGE = 'kernel-mm';
