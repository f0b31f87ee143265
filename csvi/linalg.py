"""Dense linear algebra on Tensors, with leading batch dims (torch.linalg's
and numpy.linalg's names): each function is one tape op whose forward and
VJP run in C over LAPACK/BLAS (src_c/ops_dense.c), so it differentiates and
replays in a compiled program like any other op.

    cholesky(a)                      lower L with a = L L^T
    solve_triangular(a, b, *, upper, left=True, unitriangular=False,
                     transpose=False)
                                     op(a)^-1 b or b op(a)^-1, a triangular
    cholesky_solve(b, L, upper=False)
                                     (L L^T)^-1 b (torch's argument order)
    tri_logdet(a)                    log |det a| of triangular a
    tril(a, k=0), triu(a, k=0)       numpy.tril / numpy.triu
    diagonal(a, offset=0, dim1=-2, dim2=-1)
    diag_embed(v, offset=0)          vectors onto the diagonals of matrices
    matmul(a, b)                     numpy.matmul, batch dims broadcast

`numpy.linalg.cholesky`, `numpy.tril`, `numpy.triu`, `numpy.diagonal`,
`numpy.diag` and `numpy.matmul` (`@`) on a Tensor record the same ops.
Matrices that are not positive definite, or singular triangular ones, raise
numpy.linalg.LinAlgError (a ValueError) naming the matrix.
"""
from csvi._core import (
    cholesky, cholesky_solve, diag_embed, diagonal, matmul, solve_triangular, tri_logdet,
    tril, triu,
)

__all__ = ["cholesky", "cholesky_solve", "diag_embed", "diagonal", "matmul",
           "solve_triangular", "tri_logdet", "tril", "triu"]
