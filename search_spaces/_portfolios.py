"""Starting configurations per family, learned offline by ``python -m benchmarks.build_portfolio``
(provenance below); enqueued after each family's defaults (``search_spaces.portfolio``).
Generated: edit by re-running the script, not by hand."""

PROVENANCE = {
    "built": "2026-12-02 18:19 UTC",
    "command": "python -m benchmarks.build_portfolio --families hist_gradient_boosting --candidates 8 --size 3 --max-rows 400 --cv 3 --scores /work/portfolio/scores_hgb.csv --out /work/portfolio/_portfolios.py",
    "commit": "31def50",
    "cv": 3,
    "earlier": {
        "xgboost": {
            "built": "2026-12-02 18:14 UTC",
            "command": "python -m benchmarks.build_portfolio --families xgboost --candidates 10 --size 3 --max-rows 500 --cv 3 --scores /work/portfolio/scores.csv --out /work/portfolio/_portfolios.py",
            "commit": "3a69f57",
            "cv": 3,
            "max_rows": 500,
            "script": "benchmarks/build_portfolio.py",
            "seconds": 397,
            "seed": 0,
            "tables": "the same tables as above"
        }
    },
    "max_rows": 400,
    "script": "benchmarks/build_portfolio.py",
    "seconds": 271,
    "seed": 0,
    "summary": {
        "hist_gradient_boosting/classification": {
            "candidates": 9,
            "chosen": [
                8,
                5,
                7
            ],
            "leave_one_table_out_defaults": 0.5021,
            "leave_one_table_out_with_portfolio": 0.8852,
            "mean_normalised_defaults": 0.5021,
            "mean_normalised_with_portfolio": 0.8852,
            "tables": 28
        },
        "hist_gradient_boosting/regression": {
            "candidates": 9,
            "chosen": [
                7,
                2,
                1
            ],
            "leave_one_table_out_defaults": 0.836,
            "leave_one_table_out_with_portfolio": 0.9596,
            "mean_normalised_defaults": 0.836,
            "mean_normalised_with_portfolio": 0.9908,
            "tables": 17
        },
        "xgboost/classification": {
            "candidates": 11,
            "chosen": [
                7,
                2,
                8
            ],
            "leave_one_table_out_defaults": 0.6181,
            "leave_one_table_out_with_portfolio": 0.9218,
            "mean_normalised_defaults": 0.6181,
            "mean_normalised_with_portfolio": 0.9494,
            "tables": 28
        },
        "xgboost/regression": {
            "candidates": 11,
            "chosen": [
                6,
                5,
                4
            ],
            "leave_one_table_out_defaults": 0.7026,
            "leave_one_table_out_with_portfolio": 0.9457,
            "mean_normalised_defaults": 0.7026,
            "mean_normalised_with_portfolio": 0.9582,
            "tables": 17
        }
    },
    "tables": [
        "1028_SWD",
        "197_cpu_act",
        "201_pol",
        "4544_GeographicalOriginalofMusic",
        "503_wind",
        "522_pm10",
        "537_houses",
        "560_bodyfat",
        "574_house_16H",
        "666_rmftsa_ladata",
        "adult",
        "ames",
        "arrests",
        "attrition",
        "car_prices",
        "carseats",
        "chile",
        "coil2000",
        "cps1985",
        "creditcard",
        "default",
        "hitters",
        "houseprices",
        "hypothyroid",
        "kr_vs_kp",
        "magic",
        "mlc_churn",
        "mushroom",
        "nursery",
        "oj",
        "optdigits",
        "page_blocks",
        "penguins",
        "phoneme",
        "sacramento",
        "satimage",
        "spambase",
        "splice",
        "stackoverflow",
        "taxi",
        "vehicle",
        "wa_churn",
        "wine_quality_white",
        "womenlf",
        "yeast"
    ]
}

PORTFOLIOS = {
    "hist_gradient_boosting": {
        "classification": [
            {
                "class_weight": "none",
                "l2_regularization": 7.858950304147583,
                "learning_rate": 0.03445441737078129,
                "max_features": 0.3714313675236196,
                "max_leaf_nodes": 27,
                "min_samples_leaf": 9
            },
            {
                "class_weight": "none",
                "l2_regularization": 0.09291871708031711,
                "learning_rate": 0.0589974509393851,
                "max_features": 0.619305232551584,
                "max_leaf_nodes": 16,
                "min_samples_leaf": 5
            },
            {
                "class_weight": "balanced",
                "l2_regularization": 0.010857774720195149,
                "learning_rate": 0.10727187395229411,
                "max_features": 0.4472677927516886,
                "max_leaf_nodes": 4,
                "min_samples_leaf": 25
            }
        ],
        "regression": [
            {
                "l2_regularization": 0.001305886823451577,
                "learning_rate": 0.024591256383397347,
                "max_features": 0.3131528603054486,
                "max_leaf_nodes": 57,
                "min_samples_leaf": 10
            },
            {
                "l2_regularization": 4.709392030276881,
                "learning_rate": 0.08996299860535256,
                "max_features": 0.5684090631780443,
                "max_leaf_nodes": 17,
                "min_samples_leaf": 64
            },
            {
                "l2_regularization": 0.0008015832747965142,
                "learning_rate": 0.0646642271741456,
                "max_features": 0.5965583595372332,
                "max_leaf_nodes": 46,
                "min_samples_leaf": 19
            }
        ]
    },
    "xgboost": {
        "classification": [
            {
                "colsample_bytree": 0.6280558411533911,
                "learning_rate": 0.013913306689277032,
                "max_cat_to_onehot": 1,
                "max_depth": 9,
                "min_child_weight": 0.020759826854343157,
                "n_estimators": 584,
                "reg_alpha": 6.178026882418684,
                "reg_lambda": 0.0027772161219577337,
                "subsample": 0.9882297325066979
            },
            {
                "colsample_bytree": 0.314152878208228,
                "learning_rate": 0.06903521707993515,
                "max_cat_to_onehot": 4,
                "max_depth": 10,
                "min_child_weight": 0.01715900729537442,
                "n_estimators": 243,
                "reg_alpha": 0.31158648353398066,
                "reg_lambda": 0.10078844818976519,
                "subsample": 0.5435646498507704
            },
            {
                "colsample_bytree": 0.344903247444149,
                "learning_rate": 0.027380096858317052,
                "max_cat_to_onehot": 4,
                "max_depth": 3,
                "min_child_weight": 0.11211714064527463,
                "n_estimators": 71,
                "reg_alpha": 0.017070611332063324,
                "reg_lambda": 0.0012572252300089976,
                "subsample": 0.707131497257335
            }
        ],
        "regression": [
            {
                "colsample_bytree": 0.41127870855186377,
                "learning_rate": 0.0921977216689866,
                "max_cat_to_onehot": 16,
                "max_depth": 4,
                "min_child_weight": 0.3461830887391456,
                "n_estimators": 80,
                "reg_alpha": 9.848640172873773e-08,
                "reg_lambda": 0.008071724032088088,
                "subsample": 0.6222127960008014
            },
            {
                "colsample_bytree": 0.5545975396598358,
                "learning_rate": 0.09786185674688934,
                "max_cat_to_onehot": 1,
                "max_depth": 3,
                "min_child_weight": 0.02664339575790138,
                "n_estimators": 367,
                "reg_alpha": 0.0013544748136111338,
                "reg_lambda": 8.859589936506331e-05,
                "subsample": 0.6577141754620919
            },
            {
                "colsample_bytree": 0.9606236549602369,
                "learning_rate": 0.010659941309425505,
                "max_cat_to_onehot": 4,
                "max_depth": 7,
                "min_child_weight": 1.0484466609828365,
                "n_estimators": 273,
                "reg_alpha": 0.013689345730521923,
                "reg_lambda": 1.7201689540343315e-05,
                "subsample": 0.8084669984373785
            }
        ]
    }
}
