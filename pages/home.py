"""Learn: the four methods as one grid, the formulas, and a one-click demo. Imports no PyTorch."""

import streamlit as st

from pages.parts.runs import see_it_work

st.title("IWAVB Lab")
st.markdown(
    "Four ways to fit a deep latent-variable model **p(x, z) = p(x|z) p(z)**, and they are "
    "**one formula**: average K importance weights of samples from an approximate posterior q(z|x)."
)

left, right = st.columns([1, 2])
if left.button("See it work", icon=":material/play_arrow:", type="primary", width="stretch"):
    see_it_work()
right.markdown(
    "Loads a pretrained model (or trains IWAVB on the toy data for a few seconds when none is "
    "installed) and opens it on the **Train** page. Then try **Compare** for the four side by side "
    "and **Posteriors** for what q and the importance weights look like."
)

st.latex(
    r"\mathcal{L}_K(x) \;=\; \mathbb{E}_{z_1..z_K \sim q(z|x)}\Big[\log \frac{1}{K}\sum_{k=1}^{K} w_k\Big]"
    r"\;\le\; \log p(x) \qquad (2.9),\ (3.1)"
)

st.subheader("The 2 × 2 grid")
grid = {
    ("Gaussian q", "K = 1"): ("VAE", "(2.4), (2.8)", "the ELBO"),
    ("Gaussian q", "K > 1"): ("IWAE", "(2.9), (2.11)", "a tighter bound from K samples"),
    ("implicit q", "K = 1"): ("AVB", "(2.13), (2.15)", "any shape of q, its density estimated by T"),
    ("implicit q", "K > 1"): ("IWAVB", "(3.1), (3.2)", "both: the paper's method"),
}
weights = {
    "Gaussian q": (r"\log w = \log p(x|z) + \log p(z) - \log q(z|x)", "q is a Gaussian (2.6): its density is known"),
    "implicit q": (r"\log w = \log p(x|z) - T(x, z)", "z = f(x, e), e ~ N(0, I) (2.12): no density, T stands in"),
}
header = st.columns([1.6, 1, 1])
header[1].markdown("#### K = 1")
header[2].markdown("#### K > 1")
for q, (formula, note) in weights.items():
    row = st.columns([1.6, 1, 1])
    with row[0]:
        st.markdown(f"#### {q}")
        st.latex(formula)
        st.caption(note)
    for col, k in zip(row[1:], ("K = 1", "K > 1")):
        name, eqs, what = grid[(q, k)]
        with col.container(border=True):
            st.markdown(f"### {name}")
            st.markdown(f"{what}  \nequations {eqs}")

st.subheader("The discriminator T (implicit q only)")
st.latex(
    r"\max_T\; \mathbb{E}_{z \sim q(z|x)}\big[\log \sigma(T(x,z))\big] + "
    r"\mathbb{E}_{z \sim p(z)}\big[\log(1-\sigma(T(x,z)))\big] \qquad (2.14)"
)
st.markdown(
    "At its optimum **T\\* = log q(z|x) − log p(z)**, so the implicit-q weights above equal the Gaussian "
    "ones. While T is not optimal the training value is only an *objective (uses T)*, not a bound: it can "
    "read better than any real model could. Models are judged by log-likelihoods that do not use T."
)
