"""Train a small iris classifier and save it with joblib.

The iris data ships inside scikit-learn, so nothing is downloaded: training works
during `docker build` and on a machine with no network.

Usage: python train.py            (writes model.joblib next to this file)
       MODEL_PATH=/tmp/m.joblib python train.py
"""

import os

import joblib
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
SEED = 42  # fixed, so every build trains exactly the same model


def main():
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=SEED, stratify=iris.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(x_train, y_train)
    accuracy = model.score(x_test, y_test)

    # Save the class names with the model: the service then needs nothing but this one file.
    bundle = {
        "model": model,
        "classes": [str(name) for name in iris.target_names],
        "features": [str(name) for name in iris.feature_names],
        "sklearn_version": sklearn.__version__,
        "test_accuracy": round(float(accuracy), 4),
    }
    joblib.dump(bundle, MODEL_PATH)
    print(f"saved {MODEL_PATH} (test accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
