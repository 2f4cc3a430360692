/* Force-included (-include) when the generated model.c is compiled for firmware: turns the
 * EF_OP_BEGIN/EF_OP_END markers around each op into per-op counter reads. */
#ifndef EF_HOOKS_H
#define EF_HOOKS_H

void ef_fw_op_begin(int op);
void ef_fw_op_end(int op);

#define EF_OP_BEGIN(i) ef_fw_op_begin(i)
#define EF_OP_END(i) ef_fw_op_end(i)

#endif
