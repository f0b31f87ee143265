# Dense linear algebra ops (src_c/linalg.def).
