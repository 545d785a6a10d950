"""Simple baselines on the same splits: what an adapter has to beat to be worth its cost."""

from collections import Counter

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from lorakit.tasks.classification.metrics import classification_metrics


def baselines(train_texts: list[str], train_labels: list[str], test_texts: list[str], test_labels: list[str],
              label_names: list[str]) -> dict[str, dict]:
    """Majority class, TF-IDF + logistic regression and TF-IDF + linear SVM, scored like the adapter."""
    index = {name: i for i, name in enumerate(label_names)}
    y_true = [index[y] for y in test_labels]
    out = {}
    majority = Counter(train_labels).most_common(1)[0][0]
    out["majority class"] = classification_metrics(y_true, [index[majority]] * len(y_true), label_names)
    for name, clf in (("tf-idf + logistic regression", LogisticRegression(max_iter=2000)),
                      ("tf-idf + linear SVM", LinearSVC())):
        model = make_pipeline(TfidfVectorizer(), clf).fit(train_texts, train_labels)
        out[name] = classification_metrics(y_true, [index[y] for y in model.predict(test_texts)], label_names)
    return out
