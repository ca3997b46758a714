/**
 * Which files of a Debian root filesystem IMA would measure, for the policy generator. Pure:
 * the walk and the hashing are the caller's (controller/ima-policy-generator.ts).
 *
 * With the usual IMA policy (Keylime's and the kernel's ima_policy=tcb: measure
 * func=BPRM_CHECK, func=FILE_MMAP mask=MAY_EXEC, func=MODULE_CHECK), a file is measured when
 * it is executed (anything with an exec bit, scripts included), mapped executable (shared
 * libraries: ELF files, often without exec bits) or loaded as a kernel module (.ko, possibly
 * compressed: the kernel measures the file as read). IMA logs the path the kernel resolved
 * (d_path), so symbolic links are not entries of their own: their targets are.
 */

/** Top-level directories walked by default; on merged-/usr Debian /bin, /sbin, /lib* are links into /usr. */
export const IMA_MEASURED_ROOTS: readonly string[] = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt', '/etc'];

/** The ELF magic (ELF specification, e_ident[EI_MAG0..3]). */
export const ELF_MAGIC: readonly number[] = [0x7f, 0x45, 0x4c, 0x46];

/** Kernel module file names: .ko and the compressed forms kmod loads (.ko.xz, .ko.zst, .ko.gz). */
const MODULE_NAME = /\.ko(?:\.(?:xz|zst|gz))?$/;

/** S_IXUSR | S_IXGRP | S_IXOTH. */
const EXEC_BITS = 0o111;

/**
 * Whether IMA would measure a regular file: exec bits, ELF magic in its first bytes, or a
 * kernel module name. `head` is at least the first 4 bytes when the file has them.
 */
export function wouldImaMeasure(path: string, mode: number, head: Uint8Array): boolean {
  if ((mode & EXEC_BITS) !== 0) return true;
  if (MODULE_NAME.test(path)) return true;
  return head.length >= 4 && head[0] === ELF_MAGIC[0] && head[1] === ELF_MAGIC[1] && head[2] === ELF_MAGIC[2] && head[3] === ELF_MAGIC[3];
}

/**
 * The name IMA logs for a path: the kernel turns every space into '_' when it records a
 * name (ima_template_lib.c ima_write_template_field_data, so a list line never splits on
 * one). A policy must name files the same way to match.
 */
export function imaEventName(path: string): string {
  return path.replaceAll(' ', '_');
}
