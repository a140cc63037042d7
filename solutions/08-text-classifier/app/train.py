"""Train a small support-ticket classifier on tickets.csv and save it with joblib.

The examples ship next to this file (tickets.csv), so nothing is downloaded: training works
during `docker build` and on a machine with no network.

Usage: python train.py            (writes model.joblib next to this file)
       MODEL_PATH=/tmp/m.joblib python train.py
"""

import csv
import os

import joblib
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_PATH = os.path.join(HERE, "tickets.csv")
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
SEED = 42  # fixed, so every build trains exactly the same model


def main():
    with open(DATA_PATH, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [row["text"] for row in rows]
    topics = [row["topic"] for row in rows]

    # Words and pairs of words, weighted by how telling they are (TF-IDF), feed a linear classifier.
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(C=10, max_iter=1000, random_state=SEED),
    )
    # With so few examples, estimate the accuracy by cross-validation, then train on all of them.
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    accuracy = cross_val_score(model, texts, topics, cv=folds).mean()
    model.fit(texts, topics)

    # Save the labels with the model: the service then needs nothing but this one file.
    bundle = {
        "model": model,
        "labels": [str(label) for label in model.classes_],
        "examples": len(rows),
        "sklearn_version": sklearn.__version__,
        "cv_accuracy": round(float(accuracy), 4),
    }
    joblib.dump(bundle, MODEL_PATH)
    print(f"saved {MODEL_PATH} ({len(rows)} examples, cross-validated accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
