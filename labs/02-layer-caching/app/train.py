"""Train a small wine classifier and save it with joblib.

The wine data (178 wines from three cultivars, 13 chemical measurements each) ships inside
scikit-learn, so nothing is downloaded: training works during `docker build` and on a machine with
no network. The CSV in data/ is only a sample for exploring; the image does not need it.

Usage: python train.py            (writes model.joblib next to this file)
       MODEL_PATH=/tmp/m.joblib python train.py
"""

import os

import joblib
import sklearn
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
SEED = 42  # fixed, so every build trains exactly the same model


def api_name(feature):
    """scikit-learn's feature names, made safe as JSON keys ('od280/od315_...' -> 'od280_od315_...')."""
    return feature.replace("/", "_")


def main():
    wine = load_wine()
    x_train, x_test, y_train, y_test = train_test_split(
        wine.data, wine.target, test_size=0.2, random_state=SEED, stratify=wine.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(x_train, y_train)
    accuracy = model.score(x_test, y_test)

    # Everything the service needs travels in this one file: the model, the class names and the
    # feature names in the order the model expects them.
    bundle = {
        "model": model,
        "classes": [f"cultivar_{i + 1}" for i in range(len(wine.target_names))],
        "features": [api_name(name) for name in wine.feature_names],
        "sklearn_version": sklearn.__version__,
        "test_accuracy": round(float(accuracy), 4),
    }
    joblib.dump(bundle, MODEL_PATH)
    print(f"saved {MODEL_PATH} (test accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
